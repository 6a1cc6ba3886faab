#!/usr/bin/env bash
# The social-core benchmarks of issue 12, by hand (minutes; not part of CI):
#   scripts/bench-social.sh [postgres|sqlite]
# Builds release binaries, seeds a fresh database (`agora seed` defaults), starts the server in
# its own process (PostgreSQL + Redis, or SQLite alone), and runs agora-load in another:
# the healthz baseline, then the feed read path (warm page cache), the mixed feed, profile and
# post, each as a ratio of the baseline; the read path at half its measured load; fan-out of one
# post to a 5,000-friend audience (post → last entry written); then (PostgreSQL) the feed with
# Redis stopped.
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
server=
start_server() {
  $agora serve >>"$out/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return; sleep 0.1; done
  echo "the server did not become ready" >&2; exit 1
}
stop_server() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
trap stop_server EXIT
start_server

# Waits until the fan-out queue is empty: posts of one phase fan out for a while after it, and
# that work would be charged to the next phase.
drain() {
  for _ in $(seq 1200); do
    $agora jobs stats | awk '$1 == "fanout" && $2 == 0 && $3 == 0 && $4 == 0 { ok = 1 } END { exit !ok }' && return
    sleep 0.5
  done
  echo "the fanout queue did not drain" >&2; exit 1
}

run() {
  local name=$1; shift
  drain
  echo "== $name"
  env -u AGORA_DATABASE__URL -u AGORA_REDIS__URL "$load" --host "http://127.0.0.1:$port" --quiet --no-print-metrics \
    --users "$users" --increase-rate "$users" --run-time "$run_time" "$@" | tee "$out/$name.txt"
}

# The sum of the req/s column of an agora-load table, halved.
half_of() {
  python3 - "$1" <<'PY'
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
}

run feed-read --scenarios feedread --compare-with healthz --report-file "$out/feed-read.html"
run feed --scenarios feed --compare-with healthz --report-file "$out/feed.html"
run profile --scenarios profile --compare-with healthz
run post --scenarios post --compare-with healthz
# Half the read path's measured rate (goose throttles requests per second across all users).
run feed-read-half-load --scenarios feedread --throttle-requests "$(half_of "$out/feed-read.txt")"

# Fan-out of one post to the hub's audience (seed0: 5,000 friends, all active readers), on a
# fresh server so its metrics hold only these posts: post → last feed entry written.
echo "== fanout (seed0, ${BENCH_FANOUT_POSTS:-20} posts)"
drain
stop_server
start_server
python3 - "http://127.0.0.1:$port" "${BENCH_FANOUT_POSTS:-20}" <<'PY' | tee "$out/fanout.txt"
import json, sys, time, urllib.request
base, posts = sys.argv[1], int(sys.argv[2])
def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req) as r:
        return r.read()
token = json.loads(call("POST", "/v1/sessions", {"login": "seed0", "password": "seed-password"}))["tokens"]["access_token"]
for i in range(posts):
    call("POST", "/v1/posts", {"body": f"fan-out benchmark {i}"}, token)
    time.sleep(0.5)
def metric(name):
    out = {}
    for line in call("GET", "/metrics").decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out
for _ in range(600):
    lag = metric("feed_fanout_lag_seconds")
    if lag.get("feed_fanout_lag_seconds_count", 0) >= posts:
        break
    time.sleep(0.1)
for key, value in sorted(lag.items()):
    print(f"{key} {value:.4f}")
written = metric("feed_entries_written_total")
print("feed_entries_written_total", sum(written.values()))
PY

if [[ "$backend" == postgres ]]; then
  redis-cli -h 127.0.0.1 -p 6379 shutdown nosave || true
  sleep 1
  run feed-read-redis-stopped --scenarios feedread --compare-with healthz
  run feed-redis-stopped --scenarios feed --compare-with healthz
  ../shared/services.sh >/dev/null 2>&1 || true
fi
echo "figures in $out/*.txt, goose's reports in $out/feed-read.html and $out/feed.html"
