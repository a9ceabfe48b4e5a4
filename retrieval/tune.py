"""Tuning search on judged queries (a BEIR folder, split by ``beir.split_queries``): fine-tune the embedding
model on the training queries' relevant (query, product text) pairs, and fit the convex-fusion weight.

Fine-tuning is a plain PyTorch loop over sentence-transformers' ``MultipleNegativesRankingLoss`` (in-batch
negatives; each batch holds no query and no product twice), from the packaged all-MiniLM-L6-v2 or another
folder, on CPU, never downloading anything. Sized for a 2-core machine: pairs are subsampled (``max_pairs``;
12,000 take ~10 min on one thread), one epoch, ``max_seq_length`` 32 (product titles and shopper queries are
short). The tuned folder is a normal sentence-transformers folder plus ``kefu_tune.json`` (what it was trained
on, the loss, and the fusion weight fitted with it, which an index built with the model records in its
manifest).

Held-out queries are never read here except to count them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from kefu.embedder import Embedder, default_model_path
from kefu.errors import StoreError
from retrieval.beir import Qrels, load_beir, split_queries
from retrieval.fusion import Candidates, fit_alpha, ideal_dcg
from retrieval.indexer import TUNE_FILE, IndexLocation, build_index

log = logging.getLogger(__name__)


def training_pairs(
    texts: dict[str, str], queries: dict[str, str], qrels: Qrels, train: list[str], min_gain: float
) -> list[tuple[str, str]]:
    """(query text, product text) for every training judgement with gain >= ``min_gain``."""
    return [
        (queries[q], texts[d])
        for q in train
        for d, gain in sorted(qrels.get(q, {}).items())
        if gain >= min_gain and d in texts and texts[d].strip()
    ]


def batches(pairs: list[tuple[str, str]], size: int, seed: int) -> list[list[tuple[str, str]]]:
    """Shuffled batches in which no query text and no product text repeats (a repeat would be a false negative
    for the in-batch loss); a pair that does not fit waits for a later batch."""
    rng = random.Random(seed)
    todo = pairs[:]
    rng.shuffle(todo)
    out: list[list[tuple[str, str]]] = []
    while todo:
        batch, seen_q, seen_d, later = [], set(), set(), []
        for q, d in todo:
            if len(batch) < size and q not in seen_q and d not in seen_d:
                batch.append((q, d))
                seen_q.add(q)
                seen_d.add(d)
            else:
                later.append((q, d))
        if len(batch) < 2:  # nothing left to contrast
            break
        out.append(batch)
        todo = later
    return out


def fine_tune(
    pairs: list[tuple[str, str]],
    out: Path,
    *,
    base: Path | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    max_seq_length: int = 32,
    lr: float = 3e-5,
    seed: int = 0,
) -> dict:
    """Fine-tune ``base`` on (query, relevant text) pairs with in-batch negatives; save to ``out``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch  # deferred: heavy
    from sentence_transformers import SentenceTransformer  # deferred: heavy
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss  # deferred: heavy

    torch.manual_seed(seed)
    base = Path(base) if base else default_model_path()
    model = SentenceTransformer(str(base), device="cpu")
    model.max_seq_length = max_seq_length
    loss_fn = MultipleNegativesRankingLoss(model)
    plan = [b for epoch in range(epochs) for b in batches(pairs, batch_size, seed + epoch)]
    if not plan:
        raise StoreError("Too few judged pairs to fine-tune on (need at least 2 distinct queries and products).")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    warmup = max(1, len(plan) // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (len(plan) - step) / (len(plan) - warmup + 1)))
    )
    model.train()
    losses, started = [], time.perf_counter()
    for step, batch in enumerate(plan):
        features = [model.preprocess([q for q, _ in batch]), model.preprocess([d for _, d in batch])]
        loss = loss_fn(features, None)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        if step % 50 == 0:
            log.info("step %d/%d loss %.4f", step + 1, len(plan), losses[-1])
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    tenth = max(1, len(losses) // 10)
    return {
        "base_model": str(base),
        "pairs": len(pairs),
        "steps": len(plan),
        "epochs": epochs,
        "batch_size": batch_size,
        "max_seq_length": max_seq_length,
        "lr": lr,
        "loss_first_tenth": round(float(np.mean(losses[:tenth])), 4),
        "loss_last_tenth": round(float(np.mean(losses[-tenth:])), 4),
        "train_seconds": round(time.perf_counter() - started, 1),
    }


def judged_candidates(search, queries: dict[str, str], qrels: Qrels, qids: list[str], k: int = 10) -> list[Candidates]:
    """Fusion inputs of each judged query (``search`` is a ``ProductSearch`` over the BEIR corpus)."""
    out = []
    for qid in qids:
        rows, lexical, dense = search.fusion_inputs(queries[qid])
        gains = qrels[qid]
        out.append(
            Candidates(
                gains=np.array([gains.get(pid, 0.0) for pid in search.catalog.ids[rows]], dtype=np.float64),
                lexical=np.asarray(lexical, dtype=np.float64),
                dense=np.asarray(dense, dtype=np.float64),
                ideal_dcg=ideal_dcg(gains.values(), k),
            )
        )
    return out


def tune_command_run(
    beir: Path,
    out: Path,
    *,
    base: Path | None = None,
    epochs: int = 1,
    holdout: float = 0.3,
    seed: int = 0,
    min_gain: float = 1.0,
    max_pairs: int = 12_000,
    batch_size: int = 32,
    max_seq_length: int = 32,
    lr: float = 3e-5,
    fit: bool = True,
) -> dict:
    """``kefu index tune``: fine-tune on the training queries of ``beir``, then (``fit``) index the corpus with
    the tuned model in a temporary folder and fit the fusion weight on the same training queries."""
    from retrieval.hybrid import ProductSearch  # deferred: hybrid is heavier and only needed for the fit

    catalog, queries, qrels = load_beir(beir)
    train, held = split_queries(queries, qrels, holdout, seed)
    texts = dict(zip(catalog["product_id"], catalog["text"], strict=True))
    pairs = training_pairs(texts, queries, qrels, train, min_gain)
    if len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
    report = {"beir": str(beir), "holdout": holdout, "seed": seed, "train_queries": len(train),
              "held_out_queries": len(held), "min_gain": min_gain}  # fmt: skip
    report.update(fine_tune(pairs, out, base=base, epochs=epochs, batch_size=batch_size,
                            max_seq_length=max_seq_length, lr=lr, seed=seed))  # fmt: skip
    if fit:
        started = time.perf_counter()
        embedder = Embedder(out)
        with tempfile.TemporaryDirectory(prefix="kefu-tune-") as tmp:
            location = IndexLocation(Path(tmp), "kefu-tune")
            build_index(catalog, location, embedder)
            search = ProductSearch.open_location(location, embedder)
            fitted = fit_alpha(judged_candidates(search, queries, qrels, train))
        report["dense_alpha"] = fitted["alpha"]
        report["fusion_fit"] = fitted
        report["fit_seconds"] = round(time.perf_counter() - started, 1)
    (out / TUNE_FILE).write_text(json.dumps(report, indent=2))
    return report
