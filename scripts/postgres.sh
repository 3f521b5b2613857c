#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, from Debian's `postgresql` package
# (scripts/install-tools.sh installs it): its own cluster in DIR, listening
# on 127.0.0.1 only at a free port, password authentication (scram-sha-256)
# for the user `mesh` with a random password. PostgreSQL refuses to run as
# root, so under root the server runs as the `postgres` user.
#   scripts/postgres.sh start DIR   prints the connection URL
#     (MESH_POSTGRES_OPTIONS adds server settings, e.g. "-c wal_level=minimal")
#   scripts/postgres.sh stop DIR    stops it at once (the files stay in DIR)
set -euo pipefail
command="${1:?usage: postgres.sh start|stop DIR}"
dir="${2:?usage: postgres.sh start|stop DIR}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [ -z "$bin" ]; then
  echo "postgres.sh: no PostgreSQL under /usr/lib/postgresql: run scripts/install-tools.sh" >&2
  exit 1
fi
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$command" in
  start)
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
    password="$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    (umask 077; printf '%s\n' "$password" > "$dir/password")
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/password"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U mesh --pwfile="$dir/password" --auth=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200 ${MESH_POSTGRES_OPTIONS:-}" start >/dev/null
    echo "postgres://mesh:$password@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null
    ;;
  *)
    echo "usage: postgres.sh start|stop DIR" >&2
    exit 2
    ;;
esac
