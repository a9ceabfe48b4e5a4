"""The network behind the fast intent classifier: the packaged MiniLM encoder, mean-pooled and normalized like
the sentence-transformers model it comes from, and one linear layer over the intents, fine-tuned end to end
with cross-entropy. The layer starts as a nearest-centroid classifier (each intent's row = its training
utterances' mean embedding, scaled), so even a few steps on a few examples give sensible predictions. Saved as
a transformers folder (``encoder/``) plus ``head.safetensors``; loads offline.

Left out: class weighting, learning-rate schedules, early stopping — the data is small and balanced by
sampling.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from kefu.embedder import bulk_bf16

MAX_CHARS_PER_TOKEN = 16  # texts are cut to max_length * this many characters before tokenizing (huge inputs)
CENTROID_SCALE = 20.0  # initial logits = this x cosine(utterance, intent centroid)


class IntentNet(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module, n_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, n_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        """(batch, hidden) unit-length mean of the real tokens' states."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        """(batch, n_labels) logits."""
        return self.head(self.dropout(self.embed(input_ids, attention_mask, **extra)))


@torch.inference_mode()
def init_head_from_centroids(
    net: IntentNet,
    tokenizer,
    texts: Sequence[str],
    label_ids: Sequence[int],
    *,
    max_length: int = 64,
    batch_size: int = 64,
) -> None:
    """Set the head to ``CENTROID_SCALE`` x each label's unit-length mean embedding, bias 0."""
    net.eval()
    vectors = torch.cat(
        [
            net.embed(**_batch(tokenizer, texts[i : i + batch_size], max_length))
            for i in range(0, len(texts), batch_size)
        ]
    )
    labels = torch.tensor(list(label_ids), dtype=torch.long)
    centroids = torch.zeros_like(net.head.weight).index_add_(0, labels, vectors)
    net.head.weight.copy_(CENTROID_SCALE * torch.nn.functional.normalize(centroids, dim=-1))
    net.head.bias.zero_()


def _transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    return AutoModel, AutoTokenizer


def from_base(base_dir: Path, n_labels: int, seed: int = 0):
    """(tokenizer, IntentNet) with the base encoder's weights and a freshly initialized head."""
    auto_model, auto_tokenizer = _transformers()
    torch.manual_seed(seed)
    return auto_tokenizer.from_pretrained(str(base_dir)), IntentNet(auto_model.from_pretrained(str(base_dir)), n_labels)


def save(net: IntentNet, tokenizer, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    net.encoder.save_pretrained(str(out_dir / "encoder"))
    tokenizer.save_pretrained(str(out_dir / "encoder"))
    save_file({k: v.contiguous() for k, v in net.head.state_dict().items()}, str(out_dir / "head.safetensors"))


def load(model_dir: Path, n_labels: int):
    """(tokenizer, IntentNet in eval mode) from a folder written by :func:`save`."""
    auto_model, auto_tokenizer = _transformers()
    encoder_dir = str(model_dir / "encoder")
    net = IntentNet(auto_model.from_pretrained(encoder_dir), n_labels)
    net.head.load_state_dict(load_file(str(model_dir / "head.safetensors")))
    return auto_tokenizer.from_pretrained(encoder_dir), net.eval()


def _batch(tokenizer, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    clipped = [text[: max_length * MAX_CHARS_PER_TOKEN] for text in texts]
    return dict(tokenizer(clipped, padding=True, truncation=True, max_length=max_length, return_tensors="pt"))


def fit(
    net: IntentNet,
    tokenizer,
    texts: Sequence[str],
    label_ids: Sequence[int],
    *,
    epochs: int = 2,
    batch_size: int = 32,
    encoder_lr: float = 5e-5,
    head_lr: float = 1e-3,
    max_length: int = 64,
    seed: int = 0,
    on_step: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """Train in place (head first set from the centroids); the loss of every step, in order.
    ``on_step(step, total_steps, loss)`` reports progress."""
    texts = list(texts)
    init_head_from_centroids(net, tokenizer, texts, label_ids, max_length=max_length)
    torch.manual_seed(seed)
    order = list(range(len(texts)))
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(
        [
            {"params": net.encoder.parameters(), "lr": encoder_lr},
            {"params": net.head.parameters(), "lr": head_lr},
        ],
        weight_decay=0.01,
    )
    targets = torch.tensor(list(label_ids), dtype=torch.long)
    total = epochs * ((len(order) + batch_size - 1) // batch_size)
    losses: list[float] = []
    net.train()
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            logits = net(**_batch(tokenizer, [texts[i] for i in rows], max_length))
            loss = torch.nn.functional.cross_entropy(logits, targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if on_step:
                on_step(len(losses), total, losses[-1])
    net.eval()
    return losses


@torch.inference_mode()
def probabilities(
    net: IntentNet, tokenizer, texts: Sequence[str], *, max_length: int = 64, batch_size: int = 64
) -> np.ndarray:
    """(len(texts), n_labels) softmax probabilities, float32. Many texts at once (the held-out evaluation) run
    under bf16 autocast where the CPU has it natively, as kefu.embedder's batches do; one text stays float32."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=len(texts) > 1 and bulk_bf16()):
        out = [
            torch.softmax(net(**_batch(tokenizer, texts[i : i + batch_size], max_length)).float(), dim=-1).numpy()
            for i in range(0, len(texts), batch_size)
        ]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, net.head.out_features), np.float32)
