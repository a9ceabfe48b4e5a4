#!/usr/bin/env bash
# Create .venv and install the pinned environment. Idempotent: does nothing when the lock is already installed.
# The installer is uv, pinned below and installed into .venv by pip: it installs the lock several times faster
# than pip here (README, "Measured figures").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
UV_VERSION=0.13.8
LOCK=requirements/lock.txt
STAMP=.venv/.kefu-installed
want=$(cat "$LOCK" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
start=$(date +%s)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
quiet() { grep -v "is ignored" || true; }
# The lock is a complete, resolved environment: install it as is, without re-resolving.
# torch==2.13.0+cpu comes from the machine's local wheel folder (pip's find-links; README, "Installation").
if [ "$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  .venv/bin/python -m pip install -q "uv==$UV_VERSION" 2>&1 | quiet
fi
# uv reads no pip configuration: hand it this machine's pip sources (find-links, indexes) from `pip config`,
# and look in every index for the pinned version, as pip does.
sources=(--index-strategy unsafe-best-match)
while IFS= read -r line; do
  key=${line%%=*} value=${line#*=}
  value=${value#\'} value=${value%\'}
  case "$key" in
    *.find-links) for v in $value; do sources+=(--find-links "$v"); done ;;
    *.extra-index-url) for v in $value; do sources+=(--extra-index-url "$v"); done ;;
    *.index-url) sources+=(--index-url "$value") ;;
  esac
done < <(.venv/bin/python -m pip config list 2>/dev/null)
uv=(.venv/bin/uv pip install -q --python .venv/bin/python --no-deps "${sources[@]}")
"${uv[@]}" -r "$LOCK"
"${uv[@]}" --no-build-isolation -e .
# Never let the CUDA builds of these in: transformers imports them when present and then fails.
.venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
.venv/bin/python -c "import vllm, torch, transformers, chromadb, gradio, duckdb, sentence_transformers, kefu, assistant" 2>/dev/null \
  || { echo "setup: the environment does not import; see the errors above" >&2; exit 1; }
case "$(.venv/bin/python -c 'import torch; print(torch.__version__)')" in
  *+cpu) ;;
  *) echo "setup: torch is not the CPU build; check the find-links of \`pip config list\`" >&2; exit 1 ;;
esac
echo "$want" > "$STAMP"
echo "setup: installed in $(( $(date +%s) - start )) s"
