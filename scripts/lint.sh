#!/usr/bin/env bash
# The lint gate: formatting, clippy with warnings as errors (the workspace
# lints in Cargo.toml included), buf lint, and buf breaking against the
# previous commit's proto/ so a breaking change to a published contract is
# caught before it lands; and the domain runtime's floors (scripts/floors.sh).
# Needs cargo and buf only (buf is installed into
# .tools/ from npm if it is missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PATH="$(bash scripts/install-buf.sh):$PATH"
export PATH
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
bash scripts/floors.sh
(cd proto && buf lint)
if git rev-parse -q --verify 'HEAD~1^{commit}' >/dev/null && git cat-file -e 'HEAD~1:proto/buf.yaml' 2>/dev/null; then
  (cd proto && buf breaking --against "$(git rev-parse --show-toplevel)/.git#ref=HEAD~1,subdir=proto")
else
  echo "buf breaking: no previous commit with proto/ to compare against; skipped" >&2
fi
