#!/usr/bin/env bash
# The social-core benchmarks of issue 12, by hand (minutes; not part of CI):
#   scripts/bench-social.sh [postgres|sqlite]
# Builds release binaries, seeds a fresh database (`agora seed` defaults), starts the server in
# its own process (PostgreSQL + Redis, or SQLite alone), and runs agora-load in another:
# the healthz baseline, then feed, profile and post, each as a ratio of the baseline; then the
# feed at half the measured load; then (PostgreSQL) the feed with Redis stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
backend="${1:-postgres}"
users="${BENCH_USERS:-16}"
run_time="${BENCH_RUN_TIME:-20s}"
port="${BENCH_PORT:-18181}"
out="${BENCH_OUT:-target/bench}"
mkdir -p "$out"

cargo build --release -q -p agora-server -p agora-load
agora=target/release/agora
load=target/release/agora-load

case "$backend" in
  postgres)
    psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS agora_bench" -c "CREATE DATABASE agora_bench"
    export AGORA_DATABASE__URL=postgres://postgres@127.0.0.1:5432/agora_bench
    export AGORA_REDIS__URL=redis://127.0.0.1:6379 AGORA_REDIS__KEY_PREFIX="bench$$"
    ;;
  sqlite)
    rm -f "$out"/bench.db*
    export AGORA_DATABASE__URL="sqlite://$PWD/$out/bench.db"
    ;;
  *) echo "usage: $0 [postgres|sqlite]" >&2; exit 2 ;;
esac

$agora migrate up
$agora seed

# One machine sends everything: lift the abuse limits, keep the logs quiet.
export AGORA_HTTP__BIND="127.0.0.1:$port" AGORA_LOG__LEVEL=warn AGORA_ANALYTICS__ENABLED=false
export AGORA_RATE_LIMITS__READ_PER_USER__REQUESTS=1000000000 AGORA_RATE_LIMITS__WRITE_PER_USER__REQUESTS=1000000000
export AGORA_RATE_LIMITS__AUTH_PER_IP__REQUESTS=1000000000 AGORA_RATE_LIMITS__AUTH_PER_ACCOUNT__REQUESTS=1000000000
$agora serve >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

run() {
  local name=$1; shift
  echo "== $name"
  env -u AGORA_DATABASE__URL -u AGORA_REDIS__URL "$load" --host "http://127.0.0.1:$port" --quiet --no-print-metrics \
    --users "$users" --increase-rate "$users" --run-time "$run_time" "$@" | tee "$out/$name.txt"
}

run feed --scenarios feed --compare-with healthz --report-file "$out/feed.html"
run profile --scenarios profile --compare-with healthz
run post --scenarios post --compare-with healthz
# Half the feed's measured rate (goose throttles requests per second across all users).
half=$(python3 - "$out/feed.txt" <<'PY'
import sys
total = 0.0
rows = False
for line in open(sys.argv[1]):
    if line.startswith("operation "):
        rows = True
        continue
    fields = line[28:].split()
    if rows and len(fields) >= 3 and fields[0].isdigit():
        total += float(fields[2])
print(max(1, int(total / 2)))
PY
)
run feed-half-load --scenarios feed --throttle-requests "$half"
if [[ "$backend" == postgres ]]; then
  redis-cli -h 127.0.0.1 -p 6379 shutdown nosave || true
  sleep 1
  run feed-redis-stopped --scenarios feed --compare-with healthz
  ../shared/services.sh >/dev/null 2>&1 || true
fi
echo "figures in $out/*.txt, goose's report in $out/feed.html"
