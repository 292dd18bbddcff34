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
cargo test --all-targets 2>&1
