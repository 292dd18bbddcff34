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
cargo test --all-targets 2>&1
