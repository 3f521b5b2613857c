#!/usr/bin/env bash
# Checks the domain runtime's floors (domains/runtime/src/lib.rs): a file
# may import only from its own floor and the floors below it, and the
# database crates are seen only inside their backend's folder. Prints each
# import that breaks this and fails, or prints nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../domains/runtime/src"
# The floors, lowest first; error.rs and heap.rs are below them all.
floors=(values query store scan ingest serve)
level() {
  local i
  for i in "${!floors[@]}"; do
    [ "${floors[$i]}" = "$1" ] && { echo "$i"; return; }
  done
  echo -1
}
broken=0
for floor in "${floors[@]}"; do
  mine=$(level "$floor")
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    used=$(sed -E 's/.*crate::([a-z_]+).*/\1/' <<<"${hit#*:*:}")
    theirs=$(level "$used")
    if [ "$theirs" -gt "$mine" ]; then
      echo "floors: $floor/ imports ${used}/ (a higher floor): $hit" >&2
      broken=1
    fi
  done < <(grep -rnoE 'crate::[a-z_]+' "$floor" | sort -u)
done
while IFS= read -r hit; do
  echo "floors: rusqlite outside store/sqlite/: $hit" >&2
  broken=1
done < <(grep -rnE '\brusqlite\b' . | grep -v '^\./store/sqlite/' || true)
while IFS= read -r hit; do
  echo "floors: a PostgreSQL type outside store/postgres/: $hit" >&2
  broken=1
done < <(grep -rnE '\b(tokio_postgres|deadpool_postgres|mesh_postgres::(Database|DbError|Migration))\b' . \
  | grep -v '^\./store/postgres/' || true)
exit "$broken"
