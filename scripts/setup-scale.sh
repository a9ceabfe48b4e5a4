#!/usr/bin/env bash
# Install the optional extra `scale` (requirements/scale.txt: pyspark, psycopg, redis) into .venv. Idempotent: does nothing
# when the pinned file is already installed. `make test` runs it (the tests use the extra); `make demo` does not,
# so a newcomer's set-up does not grow by half a gigabyte.
set -euo pipefail
cd "$(dirname "$0")/.."
REQS=requirements/scale.txt
STAMP=.venv/.kefu-scale-installed
[ -x .venv/bin/python ] || { echo "setup-scale: no .venv; run \`make setup\` first" >&2; exit 1; }
want=$(cat "$REQS" | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
start=$(date +%s)
echo "setup-scale: installing $REQS (pyspark is a 456 MB download the first time)"
# pip, not uv: it reads this machine's pip configuration (find-links, indexes) itself, and caches the wheel it
# builds from pyspark's sdist, so a later .venv installs it in seconds.
.venv/bin/python -m pip install -q --no-deps -r "$REQS" 2>&1 | { grep -v "is ignored" || true; }
.venv/bin/python -c "import pyspark, py4j, psycopg, redis" \
  || { echo "setup-scale: the scale extra does not import; see the errors above" >&2; exit 1; }
command -v java >/dev/null \
  || echo "setup-scale: warning: no java on PATH; pyspark needs a Java 17+ runtime (apt-get install openjdk-17-jre-headless)" >&2
echo "$want" > "$STAMP"
echo "setup-scale: installed in $(( $(date +%s) - start )) s"
