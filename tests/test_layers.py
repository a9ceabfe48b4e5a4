"""The layering rule (``[tool.importlinter]`` in pyproject.toml) holds, and breaking it fails the check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["kefu", "retrieval", "segmentation", "assistant", "eval", "ui"]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy's packages come first on the path
    return subprocess.run([LINT, "--no-logo", "--no-cache"], cwd=root, env=env, capture_output=True, text=True)


def test_layers_hold_and_a_lower_layer_importing_a_higher_one_fails(tmp_path):
    for name in PACKAGES:
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    kept = lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "1 kept, 0 broken" in kept.stdout

    module = tmp_path / "retrieval" / "lexical.py"
    module.write_text(module.read_text() + "\nimport assistant  # noqa: E402,F401 - the violation under test\n")
    broken = lint(tmp_path)
    assert broken.returncode != 0
    assert "BROKEN" in broken.stdout and "retrieval.lexical -> assistant" in broken.stdout
