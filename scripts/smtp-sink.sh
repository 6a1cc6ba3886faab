#!/usr/bin/env bash
# The loopback SMTP server of the email tests (aiosmtpd, pinned in tools/smtp-sink).
#
#   scripts/smtp-sink.sh --install-only        # prepare tools/smtp-sink/.venv; print the python path
#   scripts/smtp-sink.sh --dir DIR [--port N]  # run it (prints "listening <port>")
#
# scripts/test.sh installs it and exports AGORA_TEST_SMTP_SINK (the venv's python and the
# script) so the tests start their own sink per test. Re-installs only when the pins change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOL="$ROOT/tools/smtp-sink"
VENV="$TOOL/.venv"
REQS="$TOOL/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PY="$VENV/bin/python"

install_venv() {
  local want
  want="$(sha256sum "$REQS" | cut -d' ' -f1)"
  if [[ -d "$VENV" ]] && ! "$PY" -c 'import sys' >/dev/null 2>&1; then rm -rf "$VENV"; fi
  [[ -d "$VENV" ]] || python3 -m venv "$VENV"
  if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    "$PY" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQS" </dev/null >&2
    echo "$want" >"$STAMP"
  fi
}

case "${1:-}" in
  -h|--help|"") sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --install-only) install_venv; echo "$PY $TOOL/sink.py" ;;
  *) install_venv; exec "$PY" "$TOOL/sink.py" "$@" ;;
esac
