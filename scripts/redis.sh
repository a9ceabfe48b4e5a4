#!/usr/bin/env bash
# The shared-state tests start their own redis-server (Debian's) on a free port and stop it; nothing is assumed
# running. Installs it when missing (as root on these machines; with sudo otherwise). Idempotent, seconds.
set -euo pipefail
if command -v redis-server >/dev/null; then
  exit 0
fi
echo "redis: installing Debian's redis-server for the shared-state tests"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
command -v redis-server >/dev/null || { echo "redis: install failed; apt-get install -y redis-server" >&2; exit 1; }
