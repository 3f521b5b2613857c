#!/usr/bin/env bash
# Installs buf (npm package @bufbuild/buf) into .tools/ if it is missing and
# prints the bin folder to put on PATH. The lint gate needs nothing else.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"
if [ ! -x "$tools/bin/buf" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" @bufbuild/buf@1 >&2
  ln -sf "$tools/npm/node_modules/.bin/buf" "$tools/bin/buf"
fi
echo "$tools/bin"
