"""``kefu eval retrieval``: nDCG@k, Recall@100, MRR@k and latency of BM25, dense and hybrid search over a BEIR
folder (``corpus.jsonl`` with _id/title/text and optional metadata, ``queries.jsonl`` with _id/text,
``qrels/test.tsv`` with a header and query-id, corpus-id, score).

The corpus is indexed into a temporary folder (or ``--index-dir``, reused incrementally across runs) with the
real embedder, Chroma and bm25s, and each system answers every judged query at depth 100. Gain = the qrels score
as given (linear); a document is relevant for Recall and MRR when its score is > 0. Latency is wall time per
``search`` call at depth 100, warm (after one untimed query).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import typer

from kefu.console import console, print_json, settings_of
from kefu.embedder import Embedder
from kefu.errors import StoreError
from retrieval.catalog import catalog_from_records
from retrieval.hybrid import FusionConfig, ProductSearch
from retrieval.indexer import IndexLocation, build_index

DEPTH = 100
CATALOG_FIELDS = ("price", "department", "category", "brand", "in_stock", "rating")


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise StoreError(f"Missing {path}: a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv.")
    rows = []
    with path.open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StoreError(f"{path}:{n}: not valid JSON ({exc.msg}).") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise StoreError(f"{path}:{n}: each line must be an object with an _id.")
            rows.append(row)
    return rows


def read_qrels(path: Path) -> dict[str, dict[str, float]]:
    if not path.is_file():
        raise StoreError(f"Missing {path}: qrels/test.tsv with header query-id, corpus-id, score.")
    qrels: dict[str, dict[str, float]] = {}
    with path.open() as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if n == 1 and not parts[-1].lstrip("-").replace(".", "").isdigit():
                continue  # header
            if len(parts) != 3:
                raise StoreError(f"{path}:{n}: expected 3 tab-separated columns, got {len(parts)}.")
            try:
                qrels.setdefault(parts[0], {})[parts[1]] = float(parts[2])
            except ValueError:
                raise StoreError(f"{path}:{n}: score {parts[2]!r} is not a number.") from None
    return qrels


def load_beir(folder: Path):
    """(catalogue DataFrame, {query id: text}, qrels) from a BEIR folder."""
    records = []
    for doc in read_jsonl(folder / "corpus.jsonl"):
        title, text = str(doc.get("title") or ""), str(doc.get("text") or "")
        meta = doc.get("metadata") or {}
        record = {
            "product_id": str(doc["_id"]),
            "title": title or text[:120],
            "text": ". ".join(p for p in (title, text) if p),
        }
        record.update({k: meta[k] for k in CATALOG_FIELDS if k in meta})
        records.append(record)
    queries = {str(q["_id"]): str(q.get("text") or "") for q in read_jsonl(folder / "queries.jsonl")}
    return catalog_from_records(records), queries, read_qrels(folder / "qrels" / "test.tsv")


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


def evaluate(search, queries: dict[str, str], qrels: dict[str, dict[str, float]], systems: list[str], k: int) -> dict:
    judged = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]
    out = {}
    for system in systems:
        search.search(queries[judged[0]], k=DEPTH, system=system)  # warm-up, untimed
        scores = {"ndcg": [], "recall": [], "mrr": []}
        latencies = []
        for qid in judged:
            started = time.perf_counter()
            ranked = search.search(queries[qid], k=DEPTH, system=system).ids
            latencies.append((time.perf_counter() - started) * 1000)
            scores["ndcg"].append(ndcg(ranked, qrels[qid], k))
            scores["recall"].append(recall(ranked, qrels[qid], DEPTH))
            scores["mrr"].append(mrr(ranked, qrels[qid], k))
        out[system] = {
            f"ndcg@{k}": round(float(np.mean(scores["ndcg"])), 4),
            f"recall@{DEPTH}": round(float(np.mean(scores["recall"])), 4),
            f"mrr@{k}": round(float(np.mean(scores["mrr"])), 4),
            "p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p95_ms": round(float(np.percentile(latencies, 95)), 2),
        }
    return {"queries": len(judged), "systems": out}


def run(folder: Path, systems: list[str], k: int, settings, index_dir: Path | None = None) -> dict:
    catalog, queries, qrels = load_beir(folder)
    ids = set(catalog["product_id"])
    unknown_docs = sum(1 for docs in qrels.values() for d in docs if d not in ids)
    unknown_queries = sum(1 for q in qrels if q not in queries)
    embedder = Embedder(settings.embed_model)
    config = FusionConfig.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="kefu-beir-") as tmp:
        location = IndexLocation(index_dir or Path(tmp), "kefu-beir-eval")
        report = build_index(catalog, location, embedder, progress=True)
        search = ProductSearch.open_location(location, embedder, config)
        result = evaluate(search, queries, qrels, systems, k)
    return {
        "queries": result["queries"],
        "corpus": len(catalog),
        "systems": result["systems"],
        "k": k,
        "latency_depth": DEPTH,
        "qrels_unknown_docs": unknown_docs,
        "qrels_unknown_queries": unknown_queries,
        "fusion": config.__dict__,
        "indexing_seconds": report["seconds"],
    }


def retrieval_command(
    ctx: typer.Context,
    beir: Path = typer.Option(..., "--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    systems: str = typer.Option("bm25,dense,hybrid", "--systems", help="Comma-separated: bm25, dense, hybrid."),
    k: int = typer.Option(10, "-k", help="Cut-off for nDCG and MRR."),
    index_dir: Path = typer.Option(None, "--index-dir", help="Keep the corpus index here (reused next time)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Compare BM25, dense and hybrid retrieval on a BEIR folder (nDCG, Recall@100, MRR, latency)."""
    chosen = [s.strip() for s in systems.split(",") if s.strip()]
    bad = [s for s in chosen if s not in ("bm25", "dense", "hybrid")]
    if bad or not chosen:
        raise StoreError(f"--systems takes bm25, dense and/or hybrid; got {systems!r}.")
    if not 1 <= k <= DEPTH:
        raise StoreError(f"-k must be between 1 and {DEPTH}.")
    result = run(beir, chosen, k, settings_of(ctx), index_dir)
    if as_json:
        print_json(result)
        return
    console.print(f"{result['queries']} queries, {result['corpus']:,} documents")
    for name, figures in result["systems"].items():
        console.print(f"{name:>7}: " + ", ".join(f"{key} {value}" for key, value in figures.items()))
