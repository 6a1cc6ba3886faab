#!/usr/bin/env bash
# Lint the API contract with Redocly CLI and the project's ruleset.
#
#   scripts/lint-contract.sh            # lints openapi.yaml at the repo root
#   scripts/lint-contract.sh FILE       # lints another file (e.g. a draft), same ruleset
#
# Works from any cwd and in CI (CI=true, no stdin). Needs node >= 20.19 and npm.
# Redocly CLI is pinned in tools/contract-lint/package.json + package-lock.json and
# installed with `npm ci` into tools/contract-lint/node_modules (gitignored) whenever
# that is missing or older than the lockfile.
# Exits non-zero when the contract has any lint error (or the install fails).
# Env: REDOCLY_FORMAT (default stylish; e.g. github-actions, json, codeframe).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOL_DIR="tools/contract-lint"
CONFIG="$TOOL_DIR/redocly.yaml"
CONTRACT="${1:-openapi.yaml}"
STAMP="$TOOL_DIR/node_modules/.agora-lock.sha256"
REDOCLY="$TOOL_DIR/node_modules/.bin/redocly"

# Redocly must never try to reach the internet (CI reaches only package registries).
export REDOCLY_TELEMETRY=off
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export REDOCLY_SUPPRESS_NOTIFICATIONS=true

if [[ ! -f "$CONTRACT" ]]; then
  echo "lint-contract: no such file: $CONTRACT" >&2
  exit 2
fi

lock_hash="$(sha256sum "$TOOL_DIR/package-lock.json" "$TOOL_DIR/package.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$REDOCLY" || ! -f "$STAMP" || "$(cat "$STAMP")" != "$lock_hash" ]]; then
  echo "lint-contract: installing Redocly CLI (npm ci --prefix $TOOL_DIR)" >&2
  npm ci --prefix "$TOOL_DIR" --no-audit --no-fund --ignore-scripts --loglevel=error </dev/null >&2
  echo "$lock_hash" >"$STAMP"
fi

echo "lint-contract: redocly $("$REDOCLY" --version 2>/dev/null | head -n1) lint $CONTRACT (config $CONFIG)" >&2
# --lint-config error: a broken or mistyped redocly.yaml fails the run instead of warning.
exec "$REDOCLY" lint "$CONTRACT" \
  --config "$CONFIG" \
  --lint-config error \
  --format "${REDOCLY_FORMAT:-stylish}" \
  --max-problems 1000 \
  </dev/null
