#!/usr/bin/env bash
# Create .venv and install the pinned environment. Idempotent: does nothing when the lock is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
LOCK=requirements/lock.txt
STAMP=.venv/.kefu-installed
want=$(cat "$LOCK" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
start=$(date +%s)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# The lock is a complete, resolved environment: install it as is, without re-resolving.
# torch==2.13.0+cpu comes from the machine's local wheel folder (pip's find-links); see NOTES in README.
.venv/bin/python -m pip install -q --no-deps -r "$LOCK" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v "is ignored" || true
# Never let the CUDA builds of these in: transformers imports them when present and then fails.
.venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
.venv/bin/python -c "import vllm, torch, transformers, chromadb, gradio, duckdb, sentence_transformers, kefu, assistant" 2>/dev/null \
  || { echo "setup: the environment does not import; see the errors above" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "setup: installed in $(( $(date +%s) - start )) s"
