#!/usr/bin/env bash
# A real PostgreSQL streaming replica of the local test cluster, for the routing tests.
#
#   scripts/pg-replica.sh start    # hot standby on 127.0.0.1:${AGORA_REPLICA_PORT:-5433}; prints its URL
#   scripts/pg-replica.sh stop
#   scripts/pg-replica.sh status
#
# The primary is the cluster on 127.0.0.1:5432 (trust auth, user postgres). The script allows
# replication connections from loopback in its pg_hba.conf (reloading it), takes a base backup
# with pg_basebackup -R (so the copy starts as a standby streaming from the primary) and starts it
# as the postgres user. Needs root (or the postgres user) and the PostgreSQL server binaries.
set -euo pipefail

PORT="${AGORA_REPLICA_PORT:-5433}"
DATA="${AGORA_REPLICA_DIR:-/var/tmp/agora-pg-replica}"
PRIMARY_PORT=5432

bin_dir() {
  local v
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$v" && -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]] || { echo "pg-replica: PostgreSQL server binaries not found" >&2; exit 2; }
  echo "/usr/lib/postgresql/$v/bin"
}

as_postgres() {
  if [[ "$(id -un)" == postgres ]]; then "$@"; else runuser -u postgres -- "$@"; fi
}

running() { pg_isready -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; }

allow_replication() {
  local hba
  hba=$(psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -Atc "SHOW hba_file")
  if ! grep -q "agora-replication" "$hba"; then
    printf '# agora-replication: loopback streaming replicas for tests\nhost replication all 127.0.0.1/32 trust\n' >>"$hba"
    psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -Atqc "SELECT pg_reload_conf()" >/dev/null
  fi
}

start() {
  if running; then echo "postgres://postgres@127.0.0.1:$PORT"; return 0; fi
  # A copy left by a killed run may not start (or may have fallen too far behind the primary's
  # WAL): try it once, then start over from a fresh base backup.
  if [[ -f "$DATA/standby.signal" ]] && ! start_once; then
    echo "pg-replica: the existing copy did not start; taking a fresh base backup" >&2
    stop
    rm -rf "$DATA"
  fi
  start_once || { echo "pg-replica: did not start; see $DATA/replica.log" >&2; tail -n 20 "$DATA/replica.log" >&2; exit 1; }
  echo "postgres://postgres@127.0.0.1:$PORT"
}

start_once() {
  if running; then return 0; fi
  local bin; bin=$(bin_dir)
  allow_replication
  if [[ ! -f "$DATA/standby.signal" ]]; then
    rm -rf "$DATA"
    mkdir -p "$DATA"
    chown postgres:postgres "$DATA"
    chmod 700 "$DATA"
    as_postgres "$bin/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$DATA" -R -X stream -c fast >/dev/null
    # Debian keeps configuration outside the data directory; the copy gets its own minimal files.
    printf "hot_standby = on\n" | as_postgres tee "$DATA/postgresql.conf" >/dev/null
    printf "local all all trust\nhost all all 127.0.0.1/32 trust\n" | as_postgres tee "$DATA/pg_hba.conf" >/dev/null
    as_postgres touch "$DATA/pg_ident.conf"
  fi
  as_postgres "$bin/pg_ctl" -D "$DATA" -l "$DATA/replica.log" -w -t 60 \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DATA -c hot_standby=on" start >/dev/null || true
  for _ in $(seq 1 60); do running && break; sleep 0.5; done
  running
}

stop() {
  local bin; bin=$(bin_dir)
  if [[ -f "$DATA/postmaster.pid" ]]; then as_postgres "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || true; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running on 127.0.0.1:$PORT"; else echo "stopped"; exit 1; fi ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
