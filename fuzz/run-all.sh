#!/usr/bin/env bash
# Runs every fuzz target for RUNS executions (default 10 million) from the
# checked-in seed corpus, printing each target's executions, time and rate.
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
RUNS="${RUNS:-10000000}"
for target in $(cargo +nightly fuzz list); do
  work="$(mktemp -d)"
  cp -r "corpus/$target/." "$work/"
  started=$(date +%s)
  cargo +nightly fuzz run -O "$target" "$work" -- -runs="$RUNS" -max_len=4096 -print_final_stats=1 \
    2>"$work.log" || { tail -40 "$work.log"; exit 1; }
  took=$(( $(date +%s) - started ))
  execs=$(grep -m1 'stat::number_of_executed_units' "$work.log" | awk '{print $2}')
  echo "$target: ${execs} executions in ${took} s, no crash"
  rm -rf "$work" "$work.log"
done
