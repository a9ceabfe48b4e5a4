#!/usr/bin/env bash
# The browser tests drive Debian's chromium through Playwright (`playwright install` cannot download here).
# Installs it when missing (as root on these machines; with sudo otherwise). Idempotent.
set -euo pipefail
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
  exit 0
fi
echo "chromium: installing Debian's chromium for the browser tests (about a minute)"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null || { echo "chromium: install failed; apt-get install -y chromium" >&2; exit 1; }
