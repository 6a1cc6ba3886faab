#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed (for the browser tests in ts-client/test/browser) and
# prints its path. Installs it with apt-get when missing (needs root, or sudo without a password).
set -euo pipefail

if [[ -n "${CHROMIUM_PATH:-}" && -x "$CHROMIUM_PATH" ]]; then
  echo "$CHROMIUM_PATH"
  exit 0
fi
if path=$(command -v chromium 2>/dev/null); then
  echo "$path"
  exit 0
fi
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "install-chromium.sh: Chromium is missing and this user cannot install it (apt-get install chromium needs root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale on a fresh machine; refresh them once if the install fails.
if ! "${sudo[@]}" apt-get install -y -q chromium >&2; then
  "${sudo[@]}" apt-get update -q >&2
  "${sudo[@]}" apt-get install -y -q chromium >&2
fi
command -v chromium
