#!/usr/bin/env bash
# The whole test suite, as root on a Debian 12 machine: installs what the
# tests need (scripts/setup.sh), checks formatting and lints, then runs the
# unit tests and the integration tests, which run the real zookeeper binary
# as root and as the unprivileged test users.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
./scripts/debian-rootfs.sh >/dev/null ||
    echo "SKIPPED: no Debian rootfs (see above), so tests/filesystem.rs cannot run a full distribution" >&2
if [ ! -x ../shared/vm/run-in-guest.sh ]; then
    echo "SKIPPED: ../shared/vm is absent, so tests/guest.rs cannot boot the cgroup v2 guest;" \
        "its three tests will pass without checking anything" >&2
fi
# A stuck test (a deadlock between zookeeper and its container, say) fails
# the run after 30 minutes with a line saying so, instead of using up CI's
# whole time limit in silence; the suite takes about 5.
status=0
timeout --kill-after=30 1800 cargo test --all-targets 2>&1 || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "FAILED: the tests ran for over 30 minutes; one of them is stuck" >&2
fi
exit "$status"
