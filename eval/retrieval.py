"""``kefu eval retrieval``: nDCG@k, Recall@100, MRR@k and latency of BM25, dense and hybrid search over a BEIR
folder (``corpus.jsonl`` with _id/title/text and optional metadata, ``queries.jsonl`` with _id/text,
``qrels/test.tsv`` with a header and query-id, corpus-id, score; read by ``retrieval.beir``).

The corpus is indexed into a temporary folder (or ``--index-dir``, reused incrementally across runs) with the
real embedder (``--model``: a tuned folder from ``kefu index tune``), Chroma and bm25s, and each system answers
the judged queries at depth 100. Systems: ``bm25``, ``dense``, ``hybrid`` (the configured fusion: "auto" uses
learned weights fitted for the index, e.g. by ``--fit``, else a fitted convex weight, else rank fusion),
``hybrid_convex`` (the one-weight convex fusion) and ``hybrid_rrf`` (reciprocal-rank fusion, the earlier
method), the last two for comparison in the same run.

Which queries: all judged ones by default; with ``--holdout F`` only the held-out fraction F (the same seeded
split ``kefu index tune`` trains on the rest of), and ``--fit`` (alias ``--fit-alpha``) fits the fusion
weights (the convex weight and the learned weights) on the training part first. ``--sample N`` adds a second
block: a seeded sample of N judged queries from the whole folder (on a development folder it overlaps the
training part: ``from_training`` counts how many).

Gain = the qrels score as given (linear); a document is relevant for Recall and MRR when its score is > 0.
Latency is wall time per ``search`` call at depth 100, warm (after one untimed query).
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import typer

from kefu.console import console, print_json, settings_of
from kefu.embedder import Embedder
from kefu.errors import StoreError
from retrieval.beir import BEIR_COLLECTION, CATALOG_FIELDS, judged, load_beir, read_jsonl, read_qrels, split_queries
from retrieval.hybrid import FusionConfig, ProductSearch
from retrieval.indexer import IndexLocation, build_index
from retrieval.tune import fit_fusion

__all__ = ["CATALOG_FIELDS", "load_beir", "read_jsonl", "read_qrels", "ndcg", "recall", "mrr", "run"]
DEPTH = 100
SYSTEMS = ("bm25", "dense", "hybrid", "hybrid_convex", "hybrid_rrf")


def ndcg(ranked: list[str], gains: dict[str, float], k: int) -> float:
    dcg = sum(gains.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranked: list[str], gains: dict[str, float], k: int) -> float:
    relevant = {d for d, g in gains.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr(ranked: list[str], gains: dict[str, float], k: int) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if gains.get(d, 0) > 0), 0.0)


def evaluate(searches: dict[str, tuple[ProductSearch, str]], queries: dict[str, str],
             qrels: dict[str, dict[str, float]], qids: list[str], k: int) -> dict:  # fmt: skip
    """Figures of each named (search, system) over the judged queries ``qids``."""
    out = {}
    for name, (search, system) in searches.items():
        search.search(queries[qids[0]], k=DEPTH, system=system)  # warm-up, untimed
        scores = {"ndcg": [], "recall": [], "mrr": []}
        latencies = []
        for qid in qids:
            started = time.perf_counter()
            ranked = search.search(queries[qid], k=DEPTH, system=system).ids
            latencies.append((time.perf_counter() - started) * 1000)
            scores["ndcg"].append(ndcg(ranked, qrels[qid], k))
            scores["recall"].append(recall(ranked, qrels[qid], DEPTH))
            scores["mrr"].append(mrr(ranked, qrels[qid], k))
        out[name] = {
            f"ndcg@{k}": round(float(np.mean(scores["ndcg"])), 4),
            f"recall@{DEPTH}": round(float(np.mean(scores["recall"])), 4),
            f"mrr@{k}": round(float(np.mean(scores["mrr"])), 4),
            "p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p95_ms": round(float(np.percentile(latencies, 95)), 2),
        }
    return out


def run(folder: Path, systems: list[str], k: int, settings, index_dir: Path | None = None, *,
        model: Path | None = None, holdout: float = 0.0, seed: int = 0, sample: int = 0,
        fit: bool = False) -> dict:  # fmt: skip
    started = time.perf_counter()
    catalog, queries, qrels = load_beir(folder)
    ids = set(catalog["product_id"])
    unknown_docs = sum(1 for docs in qrels.values() for d in docs if d not in ids)
    unknown_queries = sum(1 for q in qrels if q not in queries)
    train, held = split_queries(queries, qrels, holdout, seed)
    if not holdout:  # no split: every judged query is evaluated, none trained on
        train, held = [], train
    if not held:
        raise StoreError(f"No judged query with text in {folder} (after holding out {holdout}).")
    embedder = Embedder(model or settings.embed_model)
    config = FusionConfig.from_settings(settings)
    out: dict = {"corpus": len(catalog), "model": str(embedder.model_path), "k": k, "latency_depth": DEPTH,
                 "evaluated": f"held-out {holdout:.0%} (seed {seed})" if holdout else "all judged queries",
                 "train_queries": len(train)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kefu-beir-") as tmp:
        location = IndexLocation(index_dir or Path(tmp), BEIR_COLLECTION)
        report = build_index(catalog, location, embedder, progress=True)
        search = ProductSearch.open_location(location, embedder, config)
        if fit:
            if not holdout:
                raise StoreError("--fit fits on the training queries: give --holdout too.")
            fitted = fit_fusion(search, queries, qrels, train, k)
            search.config = replace(search.config, dense_alpha=fitted["convex"]["alpha"],
                                    weights=fitted["learned"]["weights"], fusion="learned")  # fmt: skip
            out["fit"] = fitted

        def variant(fusion: str) -> ProductSearch:
            return ProductSearch(search.catalog, search.lexical, search.dense, embedder, search.vectors,
                                 search.text_row, replace(search.config, fusion=fusion))  # fmt: skip

        variants = {"hybrid_convex": variant("convex"), "hybrid_rrf": variant("rrf")}
        named = {s: (variants[s], "hybrid") if s in variants else (search, s) for s in systems}
        out["queries"] = len(held)
        out["systems"] = evaluate(named, queries, qrels, held, k)
        if sample:
            pool = judged(queries, qrels)
            picked = random.Random(seed).sample(pool, min(sample, len(pool)))
            from_training = len(set(picked) & set(train))
            out["sample"] = {"queries": len(picked), "seed": seed, "from_training": from_training,
                             "systems": evaluate(named, queries, qrels, picked, k)}  # fmt: skip
    out.update({
        "qrels_unknown_docs": unknown_docs,
        "qrels_unknown_queries": unknown_queries,
        "fusion": {**search.config.__dict__, "dense_alpha_used": search.config.alpha,
                   "weights_used": search.config.weights},  # fmt: skip
        "indexing_seconds": report["seconds"],
        "index_texts_embedded": report["distinct_texts_embedded"],  # 0 when --index-dir already held them
        "seconds": round(time.perf_counter() - started, 1),
    })  # fmt: skip
    return out


def retrieval_command(
    ctx: typer.Context,
    beir: Path = typer.Option(..., "--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    systems: str = typer.Option(
        "bm25,dense,hybrid", "--systems", help="Comma-separated: bm25, dense, hybrid, hybrid_convex, hybrid_rrf."
    ),
    k: int = typer.Option(10, "-k", help="Cut-off for nDCG and MRR."),
    index_dir: Path = typer.Option(None, "--index-dir", help="Keep the corpus index here (reused next time)."),
    model: Path = typer.Option(None, "--model", help="Embedding model folder, e.g. from `kefu index tune`."),
    holdout: float = typer.Option(0.0, "--holdout", help="Evaluate only this held-out fraction of the queries."),
    seed: int = typer.Option(0, "--seed", help="Seed of the held-out split and of the sample."),
    sample: int = typer.Option(0, "--sample", help="Also report a seeded sample of this many judged queries."),
    fit: bool = typer.Option(
        False, "--fit", "--fit-alpha", help="Fit the fusion weights (convex, learned) on the training queries first."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Compare BM25, dense and hybrid retrieval on a BEIR folder (nDCG, Recall@100, MRR, latency)."""
    chosen = [s.strip() for s in systems.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SYSTEMS]
    if bad or not chosen:
        raise StoreError(f"--systems takes {', '.join(SYSTEMS)}; got {systems!r}.")
    if not 1 <= k <= DEPTH:
        raise StoreError(f"-k must be between 1 and {DEPTH}.")
    if model is not None and not model.is_dir():
        raise StoreError(f"--model {model}: no such folder (a sentence-transformers model folder).")
    result = run(beir, chosen, k, settings_of(ctx), index_dir, model=model, holdout=holdout, seed=seed,
                 sample=sample, fit=fit)  # fmt: skip
    if as_json:
        print_json(result)
        return
    console.print(f"{result['queries']} queries ({result['evaluated']}), {result['corpus']:,} documents")
    blocks = [("", result["systems"])] + ([("sample ", result["sample"]["systems"])] if "sample" in result else [])
    for label, figures_of in blocks:
        for name, figures in figures_of.items():
            console.print(f"{label}{name:>10}: " + ", ".join(f"{key} {value}" for key, value in figures.items()))
