#!/usr/bin/env bash
# Contract-test a RUNNING Agora server with Schemathesis, against the repo's openapi.yaml.
#
#   scripts/schemathesis.sh http://127.0.0.1:PORT [extra `schemathesis run` args...]
#   scripts/schemathesis.sh --install-only      # only prepare the venv (e.g. before the server starts)
#
# This script builds and starts nothing: the caller (CI) starts the server, passes its base
# URL, and stops it afterwards. The contract is read from openapi.yaml in this repo, never
# from the server. All of Schemathesis's checks run (tools/schemathesis/schemathesis.toml).
# The only host contacted is the given URL (redirects are not followed).
#
# Installs tools/schemathesis/requirements.txt (exact pins) into tools/schemathesis/.venv
# (gitignored) with python3 -m venv; re-installs only when the requirements change.
# Exits non-zero on any failure, error, or install problem. Works from any cwd, with CI=true
# and no stdin.
#
# Environment (all optional):
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase   (default 50)
#   SCHEMATHESIS_SEED          random seed, for reproducible runs  (default 20240501)
#   SCHEMATHESIS_WORKERS       concurrent workers                  (default 1)
#   SCHEMATHESIS_TIMEOUT       hard limit for the whole run, in s  (default 600)
#   SCHEMATHESIS_WAIT          seconds to wait for GET <url><ready path> to answer 200 (default 30)
#   SCHEMATHESIS_READY_PATH    the path waited on                   (default /healthz)
#   SCHEMATHESIS_REPORT_DIR    JUnit + NDJSON reports              (default tools/schemathesis/reports)
#   SCHEMATHESIS_CONTRACT      contract file                        (default openapi.yaml)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOL_DIR="tools/schemathesis"
VENV="$TOOL_DIR/.venv"
REQS="$TOOL_DIR/requirements.txt"
CONFIG="$TOOL_DIR/schemathesis.toml"
STAMP="$VENV/.requirements.sha256"
PY="$VENV/bin/python"

usage() {
  sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

install_venv() {
  local want
  want="$(sha256sum "$REQS" | cut -d' ' -f1)"
  # A venv whose interpreter is gone (python upgraded, copied tree) is rebuilt.
  if [[ -d "$VENV" ]] && ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    echo "schemathesis.sh: $VENV is broken; recreating" >&2
    rm -rf "$VENV"
  fi
  if [[ ! -d "$VENV" ]]; then
    echo "schemathesis.sh: creating $VENV" >&2
    python3 -m venv "$VENV"
  fi
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    return 0
  fi
  echo "schemathesis.sh: installing $REQS into $VENV" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQS" </dev/null >&2
  "$PY" -m pip check >&2
  echo "$want" >"$STAMP"
}

[[ $# -ge 1 ]] || usage
case "$1" in
  -h|--help) usage ;;
  --install-only) install_venv; "$VENV/bin/schemathesis" --version; exit 0 ;;
  http://*|https://*) ;;
  *) echo "schemathesis.sh: expected a base URL like http://127.0.0.1:18080, got '$1'" >&2; usage ;;
esac
BASE_URL="${1%/}"
shift

CONTRACT="${SCHEMATHESIS_CONTRACT:-openapi.yaml}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
SEED="${SCHEMATHESIS_SEED:-20240501}"
WORKERS="${SCHEMATHESIS_WORKERS:-1}"
RUN_TIMEOUT="${SCHEMATHESIS_TIMEOUT:-600}"
WAIT="${SCHEMATHESIS_WAIT:-30}"
REPORT_DIR="${SCHEMATHESIS_REPORT_DIR:-$TOOL_DIR/reports}"

[[ -f "$CONTRACT" ]] || { echo "schemathesis.sh: no such contract file: $CONTRACT" >&2; exit 2; }

install_venv

# Requests go straight to the server, never through a proxy from the environment.
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
export NO_PROXY='*' no_proxy='*'
# No plugin hooks from the environment.
unset SCHEMATHESIS_HOOKS

# Wait (bounded) for the server the caller started.
"$PY" - "$BASE_URL" "$WAIT" "${SCHEMATHESIS_READY_PATH:-/healthz}" <<'PYEOF'
import sys, time, urllib.request, urllib.error
url, wait = sys.argv[1] + sys.argv[3], float(sys.argv[2])
deadline = time.monotonic() + wait
last = None
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
            last = f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        last = f"HTTP {e.code}"
    except Exception as e:  # connection refused, timeout, ...
        last = repr(e)
    if time.monotonic() >= deadline:
        print(f"schemathesis.sh: {url} did not answer 200 within {wait:.0f}s (last: {last})", file=sys.stderr)
        sys.exit(3)
    time.sleep(0.5)
PYEOF

mkdir -p "$REPORT_DIR"
rm -f "$REPORT_DIR"/schemathesis.ndjson "$REPORT_DIR"/junit.xml

echo "schemathesis.sh: $("$VENV/bin/schemathesis" --version) | contract $CONTRACT | url $BASE_URL | seed $SEED | max-examples $MAX_EXAMPLES | workers $WORKERS" >&2

set +e
# WebSocket channels (x-dropshot-websocket) speak WebSocket after the upgrade, which Schemathesis
# does not; a plain GET gets Dropshot's own "expected connection upgrade" 400. Their frames and
# close codes are tested by tests/tests/e2e/realtime.rs (and their auth by the authorization sweep).
timeout --kill-after=10 "$RUN_TIMEOUT" \
  "$VENV/bin/schemathesis" --config-file "$CONFIG" run "$CONTRACT" \
    --exclude-operation-id connect_realtime \
    --url "$BASE_URL" \
    --seed "$SEED" \
    --max-examples "$MAX_EXAMPLES" \
    --workers "$WORKERS" \
    --generation-database none \
    --max-redirects 0 \
    --report junit,ndjson \
    --report-dir "$REPORT_DIR" \
    --report-junit-path "$REPORT_DIR/junit.xml" \
    --report-ndjson-path "$REPORT_DIR/schemathesis.ndjson" \
    "$@" </dev/null
rc=$?
set -e
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
  echo "schemathesis.sh: run exceeded ${RUN_TIMEOUT}s and was killed" >&2
fi

# One-screen summary from the NDJSON event stream: every check run, and its verdicts.
if [[ -f "$REPORT_DIR/schemathesis.ndjson" ]]; then
  "$PY" - "$REPORT_DIR/schemathesis.ndjson" "$rc" <<'PYEOF' || true
import collections, json, sys
path, rc = sys.argv[1], int(sys.argv[2])
checks = collections.defaultdict(collections.Counter)
ops, cases = set(), 0
for line in open(path, encoding="utf-8"):
    ev = json.loads(line)
    fin = ev.get("ScenarioFinished")
    if not fin:
        continue
    rec = fin.get("recorder") or {}
    if rec.get("label"):
        ops.add(rec["label"])
    for case_checks in (rec.get("checks") or {}).values():
        cases += 1
        for c in case_checks:
            checks[c["name"]][c["status"]] += 1
print()
print("== schemathesis.sh summary ==")
print(f"operations: {len(ops)}  test cases with checks: {cases}  checks run: {len(checks)}")
for name in sorted(checks):
    cnt = checks[name]
    bad = sum(v for k, v in cnt.items() if k != "success")
    print(f"  {'FAIL' if bad else 'ok  '}  {name:<30} {cnt['success']:>6} passed  {bad:>4} failed")
print(f"schemathesis: {'PASSED' if rc == 0 else f'FAILED (exit {rc})'}")
PYEOF
fi
echo "schemathesis.sh: reports in $REPORT_DIR/ (junit.xml, schemathesis.ndjson)" >&2
exit "$rc"
