#!/usr/bin/env bash
# CI for the TypeScript client (works from any directory, no stdin): install exactly what
# package-lock.json pins, check the generated artifacts are fresh, type-check (type tests included),
# then run the unit tests (fake fetch), the end-to-end tests (a real server, built by the tests) and
# the browser tests (headless Chromium, installed by scripts/install-chromium.sh).
set -euo pipefail
export CI=true
ts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_root="$(cd "$ts_dir/.." && pwd)"
cd "$ts_dir"

reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT
started=$SECONDS
step() { printf '\n==> ts-client: %s (at %ss)\n' "$*" "$((SECONDS - started))"; }

# npm ci wipes and reinstalls node_modules; skip it when the installed tree already matches the
# lockfile (npm writes node_modules/.package-lock.json as a copy of what it installed).
step "npm ci"
if [[ -f node_modules/.package-lock.json ]] && [[ node_modules/.package-lock.json -nt package-lock.json ]] \
  && [[ -d node_modules/openapi-typescript && -d node_modules/typescript ]]; then
  echo "node_modules is up to date with package-lock.json"
else
  # No lifecycle scripts: `prepare` only builds dist/ for consumers; CI type-checks the sources.
  npm ci --ignore-scripts --no-audit --no-fund </dev/null
fi

step "generated artifacts are fresh (client-gen ts --check)"
(cd "$repo_root" && cargo run -q -p client-gen -- ts --check </dev/null)

step "type check (strict, type tests included)"
npx --no-install tsc --noEmit -p tsconfig.json

summary() { grep -E '^# (tests|pass|fail|cancelled|skipped|todo) ' "$1" | tr '\n' ' '; echo; }

step "unit tests"
node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$reports/unit.tap" \
  test/unit/*.test.ts </dev/null
unit_counts="$(summary "$reports/unit.tap")"

step "end-to-end tests (real server)"
# Node 20's global WebSocket (for connectRealtime) is behind a flag; Node 22 has it by default.
node --experimental-websocket --import tsx --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$reports/e2e.tap" \
  test/e2e/*.test.ts </dev/null
e2e_counts="$(summary "$reports/e2e.tap")"

step "browser tests (headless Chromium: CORS as a browser enforces it)"
CHROMIUM_PATH="$("$repo_root/scripts/install-chromium.sh")"
export CHROMIUM_PATH
node --import tsx --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$reports/browser.tap" \
  test/browser/*.test.ts </dev/null
browser_counts="$(summary "$reports/browser.tap")"

step "done in $((SECONDS - started))s"
echo "unit:    $unit_counts"
echo "e2e:     $e2e_counts"
echo "browser: $browser_counts"
