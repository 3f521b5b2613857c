#!/usr/bin/env bash
# Runs the whole test suite. Installs the external tools the tests use
# (grpcurl, buf) into .tools/ first, so it passes on a fresh machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PATH="$(bash scripts/install-tools.sh):$PATH"
export PATH
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
