#!/usr/bin/env bash
# The records tests start their own throw-away PostgreSQL cluster (tests/postgres_server.py) with Debian's server
# binaries; this installs them when missing (as root on these machines; with sudo otherwise). Idempotent. The
# Python driver is the scale extra (requirements/scale.txt).
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
  exit 0
fi
echo "postgres: installing Debian's postgresql for the records tests (about a minute)"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  || { echo "postgres: install failed; apt-get install -y postgresql" >&2; exit 1; }
