#!/usr/bin/env bash
# The real-time gateway benchmarks of issue 13, by hand (minutes; CI runs the short variant,
# load/tests/realtime_smoke.rs):
#   scripts/bench-realtime.sh
# Builds release binaries, starts two instances sharing a fresh PostgreSQL database and Redis,
# and runs agora-realtime-bench against them:
#   1. memory per idle authenticated socket: the first instance's RSS growth over
#      BENCH_CONNECTIONS (10,000) sockets held open at once, of as many users (one device each:
#      each connected user also costs their event buffer, `realtime.event_buffer`) and of a
#      tenth as many (ten devices each);
#   2. send → delivered across instances: direct messages sent over sockets on the first
#      instance to recipients on the second, for 10 s each at a quarter, half and all of
#      BENCH_RATE (1,000) messages/s, to show where the knee is on this machine;
#   3. fan-out: a 100-member group, members' sockets alternating between the instances.
# Figures go to stdout and target/bench/realtime.txt. Raises the open-file limit first: each
# socket is a descriptor in the server and one in the benchmark.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${BENCH_OUT:-target/bench}"
connections="${BENCH_CONNECTIONS:-10000}"
rate="${BENCH_RATE:-1000}"
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < connections + 1000 )); then
  echo "the open-file limit ($(ulimit -n)) is below $((connections + 1000)); lower BENCH_CONNECTIONS" >&2
  exit 1
fi

cargo build --release -q -p agora-server -p agora-load
agora=target/release/agora
bench=target/release/agora-realtime-bench

psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS agora_rtbench" -c "CREATE DATABASE agora_rtbench"
export AGORA_DATABASE__URL=postgres://postgres@127.0.0.1:5432/agora_rtbench
export AGORA_REDIS__URL=redis://127.0.0.1:6379 AGORA_REDIS__KEY_PREFIX="rtbench$$"
$agora migrate up >/dev/null

# One machine registers and sends everything: lift the abuse limits, make sign-ups cheap (the
# benchmark registers its accounts), keep the logs quiet.
export AGORA_LOG__LEVEL=warn AGORA_ANALYTICS__ENABLED=false
export AGORA_RATE_LIMITS__AUTH_PER_IP__REQUESTS=1000000000 AGORA_RATE_LIMITS__CHAT_PER_USER__REQUESTS=1000000000
export AGORA_RATE_LIMITS__WRITE_PER_USER__REQUESTS=1000000000
export AGORA_AUTH__ARGON2_MEMORY_KIB=1024 AGORA_AUTH__ARGON2_ITERATIONS=1
export AGORA_REALTIME__MAX_CONNECTIONS_PER_USER=1000
pids=()
rm -f "$out"/realtime-server-*.log
start() {
  AGORA_HTTP__BIND="127.0.0.1:$1" $agora serve >>"$out/realtime-server-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done
  echo "the server on $1 did not become ready" >&2; exit 1
}
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap stop EXIT
start 18181
start 18182
a=http://127.0.0.1:18181 b=http://127.0.0.1:18182

{
  echo "# $(date -u +%FT%TZ) $(nproc) cores; release build; PostgreSQL + Redis on loopback"
  # Each on its own instance: memory freed by one run would be reused by the next.
  $bench --host "$a" connections --count "$connections" --users "$connections" --hold-secs 10 --server-pid "${pids[0]}"
  $bench --host "$b" connections --count "$connections" --users "$((connections / 10))" --hold-secs 10 --server-pid "${pids[1]}"
  for r in $((rate / 4)) $((rate / 2)) "$rate"; do
    $bench --host "$a" --host "$b" delivery --pairs 100 --rate "$r" --seconds 10
  done
  $bench --host "$a" --host "$b" fanout --members 100 --messages 100 --rate 10
  echo "server warnings: $(cat "$out"/realtime-server-*.log | grep -c '"level":"WARN"') (logs in $out/realtime-server-*.log)"
} | tee "$out/realtime.txt"
