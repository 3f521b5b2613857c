#!/usr/bin/env bash
# Runs the whole test suite. Installs the external tools the tests use
# (grpcurl, buf) into .tools/ first, so it passes on a fresh machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PATH="$(bash scripts/install-tools.sh):$PATH"
export PATH
# Some tests run binaries of other packages (compose.yaml is checked against
# every binary's --help), and cargo only builds the binaries of packages that
# have integration tests of their own: build them all first.
cargo build --workspace --all-targets
# One throwaway PostgreSQL server for the whole run; each test that needs
# one makes a database of its own on it (mesh_postgres::testing).
postgres_dir="$(mktemp -d)"
trap 'bash scripts/postgres.sh stop "$postgres_dir" >/dev/null 2>&1 || true; rm -rf "$postgres_dir"' EXIT
MESH_TEST_DATABASE_URL="$(bash scripts/postgres.sh start "$postgres_dir")"
export MESH_TEST_DATABASE_URL
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
