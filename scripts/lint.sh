#!/usr/bin/env bash
# The lint gate: formatting, clippy with warnings as errors, buf lint.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PATH="$(bash scripts/install-tools.sh):$PATH"
export PATH
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
(cd proto && buf lint)
