"""Tuning search on judged queries (a BEIR folder, split by ``beir.split_queries``): fine-tune the embedding
model on the training queries' relevant (query, product text) pairs, and fit the fusion weights (convex and
learned, ``fusion.py``).

Fine-tuning is a plain PyTorch loop over sentence-transformers' ``MultipleNegativesRankingLoss`` (in-batch
negatives; each batch holds no query and no product twice), from the packaged all-MiniLM-L6-v2 or another
folder, on CPU, never downloading anything. Sized for a 2-core machine: pairs are subsampled (``max_pairs``;
12,000 take ~10 min on one thread), one epoch, ``max_seq_length`` 32 (product titles and shopper queries are
short). The tuned folder is a normal sentence-transformers folder plus ``kefu_tune.json`` (what it was trained
on, the loss, and the fusion weights fitted with it, which an index built with the model records in its
manifest and hybrid search then uses).

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
from retrieval.beir import BEIR_COLLECTION, Qrels, load_beir, split_queries
from retrieval.fusion import Candidates, fit_alpha, fit_weights, ideal_dcg
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


def with_hard_negatives(
    pairs: list[tuple[str, str]], texts: dict[str, str], queries: dict[str, str], qrels: Qrels, train: list[str],
    max_gain: float, seed: int,
) -> list[tuple[str, ...]]:  # fmt: skip
    """``pairs`` with a third text where the query has judged products of gain <= ``max_gain``: the shop's own
    search showed them for that query and people judged them (nearly) irrelevant, the hardest negatives there
    are, and with no risk of being relevant-but-unjudged. Such negatives rotate over the query's pairs; pairs of
    a query without one stay pairs."""
    rng = random.Random(seed)
    negatives: dict[str, list[str]] = {}
    for q in train:
        low = [texts[d] for d, g in sorted(qrels.get(q, {}).items()) if g <= max_gain and texts.get(d, "").strip()]
        if low:
            rng.shuffle(low)
            negatives[queries[q]] = low
    out: list[tuple[str, ...]] = []
    used: dict[str, int] = {}
    for q, d in pairs:
        low = [t for t in negatives.get(q, ()) if t != d]
        if low:
            out.append((q, d, low[used.get(q, 0) % len(low)]))
            used[q] = used.get(q, 0) + 1
        else:
            out.append((q, d))
    return out


def batches(examples: list[tuple[str, ...]], size: int, seed: int) -> list[list[tuple[str, ...]]]:
    """Shuffled batches in which no query text and no product text repeats (a repeat would be a false negative
    for the in-batch loss); an example that does not fit waits for a later batch. Pairs and triplets (with a
    hard negative) go in separate batches, since one loss call takes one shape; the batches are then shuffled
    together."""
    rng = random.Random(seed)
    out: list[list[tuple[str, ...]]] = []
    for width in sorted({len(e) for e in examples}):
        todo = [e for e in examples if len(e) == width]
        rng.shuffle(todo)
        while todo:
            batch, seen_q, seen_d, later = [], set(), set(), []
            for example in todo:
                q, docs = example[0], example[1:]
                if len(batch) < size and q not in seen_q and not seen_d.intersection(docs):
                    batch.append(example)
                    seen_q.add(q)
                    seen_d.update(docs)
                else:
                    later.append(example)
            if len(batch) < (2 if width == 2 else 1):  # nothing left to contrast (a triplet holds its own)
                break
            out.append(batch)
            todo = later
    rng.shuffle(out)
    return out


def fine_tune(
    pairs: list[tuple[str, ...]],
    out: Path,
    *,
    base: Path | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    max_seq_length: int = 32,
    lr: float = 3e-5,
    seed: int = 0,
) -> dict:
    """Fine-tune ``base`` on (query, relevant text[, hard negative]) examples with in-batch negatives; save to
    ``out``."""
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
        features = [model.preprocess([example[i] for example in batch]) for i in range(len(batch[0]))]
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
        "hard_negatives": sum(1 for example in pairs if len(example) > 2),
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
        rows, lexical, dense, coverage, phrase = search.fusion_inputs(queries[qid])
        gains = qrels[qid]
        out.append(
            Candidates(
                gains=np.array([gains.get(pid, 0.0) for pid in search.catalog.ids[rows]], dtype=np.float64),
                lexical=np.asarray(lexical, dtype=np.float64),
                dense=np.asarray(dense, dtype=np.float64),
                ideal_dcg=ideal_dcg(gains.values(), k),
                coverage=coverage,
                phrase=phrase,
            )
        )
    return out


def fit_fusion(search, queries: dict[str, str], qrels: Qrels, qids: list[str], k: int = 10) -> dict:
    """Both fusion fits on the judged queries ``qids``: the convex weight and the learned-fusion weights."""
    candidates = judged_candidates(search, queries, qrels, qids, k)
    return {"convex": fit_alpha(candidates, k), "learned": fit_weights(candidates, k)}


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
    hard_negatives: bool = False,
    max_negative_gain: float = 0.34,
    batch_size: int = 32,
    max_seq_length: int = 32,
    lr: float = 3e-5,
    fit: bool = True,
    index_dir: Path | None = None,
) -> dict:
    """``kefu index tune``: fine-tune on the training queries of ``beir`` (``max_pairs`` 0: all of them), then
    (``fit``) index the corpus with the tuned model, in ``index_dir`` (kept, so that ``kefu eval retrieval
    --index-dir`` reuses its vectors) or a temporary folder, and fit the fusion weights on the same training
    queries."""
    from retrieval.hybrid import ProductSearch  # deferred: hybrid is heavier and only needed for the fit

    catalog, queries, qrels = load_beir(beir)
    train, held = split_queries(queries, qrels, holdout, seed)
    texts = dict(zip(catalog["product_id"], catalog["text"], strict=True))
    pairs = training_pairs(texts, queries, qrels, train, min_gain)
    if 0 < max_pairs < len(pairs):
        pairs = random.Random(seed).sample(pairs, max_pairs)
    examples = (
        with_hard_negatives(pairs, texts, queries, qrels, train, max_negative_gain, seed) if hard_negatives else pairs
    )
    report = {"beir": str(beir), "holdout": holdout, "seed": seed, "train_queries": len(train),
              "held_out_queries": len(held), "min_gain": min_gain}  # fmt: skip
    if hard_negatives:
        report["max_negative_gain"] = max_negative_gain
    (out / TUNE_FILE).unlink(missing_ok=True)  # a previous tune's weights must not reach the fit's index
    report.update(fine_tune(examples, out, base=base, epochs=epochs, batch_size=batch_size,
                            max_seq_length=max_seq_length, lr=lr, seed=seed))  # fmt: skip
    if fit:
        started = time.perf_counter()
        embedder = Embedder(out)
        with tempfile.TemporaryDirectory(prefix="kefu-tune-") as tmp:
            location = IndexLocation(index_dir or Path(tmp), BEIR_COLLECTION)
            build_index(catalog, location, embedder, progress=True)
            search = ProductSearch.open_location(location, embedder)
            fitted = fit_fusion(search, queries, qrels, train)
        report["dense_alpha"] = fitted["convex"]["alpha"]
        report["fusion_weights"] = fitted["learned"]["weights"]
        report["fusion_fit"] = fitted
        report["fit_seconds"] = round(time.perf_counter() - started, 1)
    (out / TUNE_FILE).write_text(json.dumps(report, indent=2))
    return report
