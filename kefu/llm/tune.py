"""LoRA fine-tuning of the served model on chat examples, on the CPU: train an adapter (``peft``), merge it into
the base weights and save a Hugging Face folder vLLM serves, with a manifest.

Capped and cached: the run stops after ``TuneConfig.steps`` optimizer steps, and a folder whose manifest holds
the same base model, data hash and configuration is reused as it is. Only the answer tokens are learned (the
prompt's are masked out), and the adapter sits on the upper layers only, so the backward pass stops there
(measured on 2 cores: about a third less time per step than all layers).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kefu.errors import ModelPrepError
from kefu.llm.prepare import MANIFEST, sha256

WIDTH_STEP = 32  # batches are padded to a multiple of this: on the CPU each new shape costs kernel set-up
Chat = Sequence[dict[str, str]]  # system?, user, assistant: the last message is the answer to learn


@dataclass(frozen=True)
class TuneConfig:
    steps: int = 120
    batch: int = 12
    lr: float = 1e-3
    rank: int = 16
    alpha: int = 32
    first_layer: int = 8  # the adapter sits on this layer and above
    warmup: int = 10
    seed: int = 0
    threads: int = 0  # 0: torch's default


def data_sha256(chats: Sequence[Chat]) -> str:
    digest = hashlib.sha256()
    for chat in chats:
        digest.update(json.dumps(list(chat), sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / MANIFEST
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None


def is_current(model_dir: Path, base_dir: Path, data_hash: str, config: TuneConfig) -> bool:
    """The folder holds a complete tune of this base on these examples with this configuration."""
    manifest = read_manifest(model_dir)
    if manifest is None or not (model_dir / "model.safetensors").is_file():
        return False
    base = read_manifest(base_dir) or {}
    return (
        manifest.get("data_sha256") == data_hash
        and manifest.get("config") == asdict(config)
        and manifest.get("base_files") == base.get("files")
    )


def _encode(tokenizer, chat: Chat) -> tuple[list[int], list[int]]:
    """Token ids of the whole chat, and labels with everything before the answer masked (-100)."""
    prompt = tokenizer.apply_chat_template(list(chat[:-1]), add_generation_prompt=True, tokenize=False)
    whole = tokenizer.apply_chat_template(list(chat), tokenize=False)
    ids = tokenizer(whole, add_special_tokens=False)["input_ids"]
    n = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    if whole.endswith("\n"):  # the template's newline after <|im_end|> is not part of the answer
        ids = ids[: len(tokenizer(whole.rstrip("\n"), add_special_tokens=False)["input_ids"])]
    return ids, [-100] * n + ids[n:]


def train(
    base_dir: Path,
    chats: Sequence[Chat],
    out_dir: Path,
    config: TuneConfig = TuneConfig(),
    on_step: Callable[[int, float], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Tune ``base_dir`` on ``chats`` into ``out_dir`` (merged weights, tokenizer, manifest); returns the
    manifest. ``extra`` is stored in the manifest as is (for example the examples' kinds)."""
    if not chats:
        raise ModelPrepError("No training examples: nothing to tune on.")
    if not (base_dir / "config.json").is_file():
        raise ModelPrepError(f"No base model at {base_dir}; run `kefu llm prepare` (or `make model`) first.")
    import torch  # deferred: heavy
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.bfloat16)
    layers = model.config.num_hidden_layers
    lora = LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        layers_to_transform=list(range(min(config.first_layer, layers - 1), layers)),
    )  # fmt: skip
    model = get_peft_model(model, lora)
    encoded = [_encode(tokenizer, chat) for chat in chats]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return config.lr * (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order: list[int] = []
    losses: list[float] = []
    t0 = time.perf_counter()
    model.train()
    for step in range(config.steps):
        if len(order) < config.batch:
            order += rng.sample(range(len(encoded)), len(encoded))
        batch, order = [encoded[i] for i in order[: config.batch]], order[config.batch :]
        width = -(-max(len(ids) for ids, _ in batch) // WIDTH_STEP) * WIDTH_STEP  # few shapes: kernels are reused
        ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step + 1, losses[-1])
    train_s = time.perf_counter() - t0

    merged = model.merge_and_unload()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tail = losses[-10:]
    manifest = {
        "base_model": base_dir.name,
        "base_files": (read_manifest(base_dir) or {}).get("files"),
        "data_sha256": data_sha256(chats),
        "examples": len(chats),
        "config": asdict(config),
        "steps": config.steps,
        "loss_first": round(sum(losses[:10]) / len(losses[:10]), 4),
        "loss_last": round(sum(tail) / len(tail), 4),
        "train_s": round(train_s, 1),
        "files": {p.name: sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()},
        **(extra or {}),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out_dir)
    return manifest


def record(model_dir: Path, **fields: Any) -> dict[str, Any]:
    """Add fields (for example the development-set figures) to a tuned model's manifest."""
    manifest = read_manifest(model_dir)
    if manifest is None:
        raise ModelPrepError(f"No tuned model at {model_dir}; run `kefu llm tune` first.")
    manifest.update(fields)
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest
