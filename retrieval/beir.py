"""BEIR folders as judged product-search data: ``corpus.jsonl`` (_id, title, text, optional metadata),
``queries.jsonl`` (_id, text) and ``qrels/test.tsv`` (header, then query-id, corpus-id, score).

Used by ``kefu eval retrieval`` (scoring) and ``kefu index tune`` (fine-tuning the embedder), so both read the
same data the same way and split it the same way: ``split_queries`` holds out a fixed fraction of the queries by
a seeded hash of their normalised text, so a query (and any query with the same text) lands on the same side in
every run and in both commands.
"""

from __future__ import annotations

import json
from hashlib import sha1
from pathlib import Path

import pandas as pd

from kefu.errors import StoreError
from retrieval.catalog import catalog_from_records

CATALOG_FIELDS = ("price", "department", "category", "brand", "in_stock", "rating")
Qrels = dict[str, dict[str, float]]  # query id -> {corpus id: gain}
BEIR_COLLECTION = "kefu-beir-eval"  # the Chroma collection of a BEIR corpus index (tune's fit and eval share it)


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


def read_qrels(path: Path) -> Qrels:
    if not path.is_file():
        raise StoreError(f"Missing {path}: qrels/test.tsv with header query-id, corpus-id, score.")
    qrels: Qrels = {}
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


def load_beir(folder: Path) -> tuple[pd.DataFrame, dict[str, str], Qrels]:
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


def judged(queries: dict[str, str], qrels: Qrels) -> list[str]:
    """Ids of the queries with text and at least one relevant (gain > 0) judgement, in file order."""
    return [q for q, text in queries.items() if text.strip() and any(g > 0 for g in qrels.get(q, {}).values())]


def is_held_out(text: str, holdout: float, seed: int = 0) -> bool:
    """Whether a query falls in the held-out fraction: a seeded hash of its casefolded, space-normalised text."""
    normal = " ".join(text.casefold().split())
    return int(sha1(f"{seed}:{normal}".encode()).hexdigest()[:8], 16) / 0x1_0000_0000 < holdout


def split_queries(queries: dict[str, str], qrels: Qrels, holdout: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """(training ids, held-out ids) of the judged queries; ``holdout`` is the held-out fraction (0..1)."""
    if not 0 <= holdout < 1:
        raise StoreError(f"The held-out fraction must be in [0, 1), got {holdout}.")
    train, held = [], []
    for qid in judged(queries, qrels):
        (held if is_held_out(queries[qid], holdout, seed) else train).append(qid)
    return train, held
