"""`kefu eval retrieval` end to end on a small BEIR folder, and the fashion dev-benchmark builder's labels."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from eval.make_fashion_beir import DEFAULT_SOURCE, build
from ui.cli import app

DOCS = {
    "d1": "Puma Men Black Running Shoes",
    "d2": "Nike Women Pink Running Shoes",
    "d3": "Titan Men Silver Watch",
    "d4": "Fastrack Women Black Watch",
    "d5": "Levis Men Blue Jeans",
    "d6": "Roadster Women Blue Jeans",
    "d7": "Wildcraft Unisex Green Backpack",
    "d8": "Lavie Women Brown Handbag",
}
QUERIES = {
    "q1": "black running shoes for men",
    "q2": "wrist watch for women",
    "q3": "blue denim jeans",
    "q4": "ladies handbag",
}
QRELS = [
    ("q1", "d1", 2),
    ("q1", "d2", 1),
    ("q2", "d4", 2),
    ("q2", "d3", 1),
    ("q3", "d5", 1),
    ("q3", "d6", 1),
    ("q4", "d8", 2),
]


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for did, title in DOCS.items():
            f.write(json.dumps({"_id": did, "title": title, "text": "", "metadata": {"category": "fashion"}}) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text in QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS)
    )
    return folder


def test_eval_retrieval_prints_the_three_systems_as_json(settings, tmp_path):
    beir = write_beir(tmp_path / "beir")
    result = CliRunner().invoke(app, ["eval", "retrieval", "--beir", str(beir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["queries"], report["corpus"]) == (4, 8)
    assert set(report["systems"]) == {"bm25", "dense", "hybrid"}
    for figures in report["systems"].values():
        assert set(figures) == {"ndcg@10", "recall@100", "mrr@10", "p50_ms", "p95_ms"}
        assert 0 < figures["ndcg@10"] <= 1 and figures["recall@100"] == 1.0  # 8 documents, depth 100
    assert report["systems"]["dense"]["mrr@10"] == 1.0  # each query's best document is unmistakable
    bad = CliRunner().invoke(app, ["eval", "retrieval", "--beir", str(beir), "--systems", "bm25,magic"])
    assert bad.exit_code != 0 and "magic" in str(bad.exception)


@pytest.mark.skipif(not (DEFAULT_SOURCE / "styles_full.csv").is_file(), reason="fashion data not present")
def test_fashion_benchmark_labels_follow_the_attributes(tmp_path):
    out = build(DEFAULT_SOURCE, tmp_path / "fashion", n_products=2000, n_queries=20, seed=3)
    assert out["queries"] == 20 and out["corpus"] == 2000
    corpus = {d["_id"]: d for d in map(json.loads, (tmp_path / "fashion" / "corpus.jsonl").open())}
    queries = {q["_id"]: q for q in map(json.loads, (tmp_path / "fashion" / "queries.jsonl").open())}
    qrels = pd.read_csv(tmp_path / "fashion" / "qrels" / "test.tsv", sep="\t", dtype=str)
    for row in qrels.itertuples(index=False):
        want, meta = queries[row[0]]["metadata"], corpus[row[1]]["metadata"]
        assert meta["category"] == want["articleType"]
        assert meta["gender"] in {want["gender"], "Unisex"}
        assert (row[2] == "2") == (meta["colour"] == want["baseColour"])
    assert all(d["text"] == "" for d in corpus.values())  # attributes are labels, not indexed text
