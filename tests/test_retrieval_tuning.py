"""Convex fusion, the Chroma HNSW over-fetch for filtered dense search, and `kefu index tune` (real embedder,
embedded Chroma, bm25s; no downloads). The catalogues and the BEIR folder here are small test constructions,
written by hand."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kefu.embedder import Embedder
from kefu.errors import SearchIndexError
from retrieval.catalog import catalog_from_records
from retrieval.fusion import Candidates, convex, fit_alpha, minmax
from retrieval.hybrid import FusionConfig, ProductSearch
from retrieval.indexer import TUNE_FILE, IndexLocation, build_index
from retrieval.lexical import LexicalIndex
from ui.cli import app

KINDS = ["cordless drill", "hammer", "garden hose", "ceiling fan", "paint roller", "door hinge", "ladder",
         "light bulb", "shower head", "toilet seat"]  # fmt: skip
COLOURS = ["red", "blue", "black", "white", "green", "grey", "brass", "steel", "oak", "chrome"]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def search(tmp_path_factory, embedder) -> ProductSearch:
    """300 hand-made products; every 10th is out of stock."""
    records = [
        {"product_id": f"p{i:03d}", "text": f"{COLOURS[i % 10]} {KINDS[(i // 10) % 10]} model {i}",
         "in_stock": i % 10 != 0}
        for i in range(300)
    ]  # fmt: skip
    location = IndexLocation(tmp_path_factory.mktemp("overfetch"), "kefu-test-overfetch")
    build_index(catalog_from_records(records), location, embedder)
    return ProductSearch.open_location(location, embedder, FusionConfig(exact_below=100, hnsw_overfetch=4))


def test_lexical_side_matches_inflected_forms():
    index = LexicalIndex.build(["DeWalt Cordless Drill", "Wood Screws", "Garden Hose Reel"])
    assert [row for row, _ in index.search(index.query_terms("drills"), 5)] == [0]
    assert [row for row, _ in index.search(index.query_terms("wood screw"), 5)] == [1]
    assert [row for row, _ in index.search(index.query_terms("hoses"), 5)] == [2]


def test_convex_fusion_with_a_known_weight_ranks_a_hand_made_case():
    # Three candidates: a strong keyword match, a strong meaning match, one fair on both.
    lexical = np.array([12.0, 0.0, 8.0])
    dense = np.array([0.30, 0.80, 0.70])
    assert minmax(lexical).tolist() == [1.0, 0.0, 2 / 3]
    assert np.argsort(-convex(lexical, dense, 0.5)).tolist() == [2, 0, 1]  # 0.5*(0.8)+0.5*(2/3) beats 0.5
    assert np.argsort(-convex(lexical, dense, 0.0)).tolist() == [0, 2, 1]  # BM25 alone
    assert np.argsort(-convex(lexical, dense, 1.0)).tolist() == [1, 2, 0]  # dense alone
    assert convex(np.zeros(3), dense, 0.3).tolist() == pytest.approx((0.3 * minmax(dense)).tolist())
    # fit_alpha finds a weight that puts the judged candidate first in both queries
    queries = [
        Candidates(np.array([0.0, 0.0, 2.0]), lexical, dense, ideal_dcg=2.0),
        Candidates(np.array([0.0, 1.0, 0.0]), np.array([5.0, 4.0, 0.0]), np.array([0.1, 0.9, 0.2]), 1.0),
    ]
    fitted = fit_alpha(queries)
    assert fitted["train_ndcg@10"] == 1.0 and 0.2 < fitted["alpha"] < 0.8


def test_hybrid_search_uses_the_fitted_weight(search):
    bm25_like = ProductSearch(search.catalog, search.lexical, search.dense, search.embedder, search.vectors,
                              search.text_row, replace(search.config, dense_alpha=0.0))  # fmt: skip
    assert bm25_like.search("red hammer", k=5).ids == search.search("red hammer", k=5, system="bm25").ids


def test_filtered_dense_search_over_fetches_from_hnsw_and_keeps_only_allowed(search, monkeypatch):
    calls = {"hnsw": [], "exact": 0}
    real_hnsw, real_exact = search.dense.search, search.exact_candidates

    def hnsw(vector, n, where):
        calls["hnsw"].append((n, where))
        return real_hnsw(vector, n, where)

    def exact(*args):
        calls["exact"] += 1
        return real_exact(*args)

    monkeypatch.setattr(search.dense, "search", hnsw)
    monkeypatch.setattr(search, "exact_candidates", exact)
    response = search.search("blue ladder", {"in_stock": True}, k=10, system="dense")
    assert calls == {"hnsw": [(min(100 * 4, 300), None)], "exact": 0}  # over-fetch, no Chroma where clause
    assert len(response.results) == 10 and all(r.in_stock for r in response.results)
    exact_ids = [search.catalog.ids[row] for row, _ in real_exact(search.encode("blue ladder"), 10,
                                                                  search.catalog.in_stock)]  # fmt: skip
    assert response.ids == exact_ids  # 300 products: HNSW is exact here

    calls.update(hnsw=[], exact=0)  # narrow filter (30 allowed < exact_below): exact scan only
    narrow = search.search("ladder", {"categories": [], "exclude_ids": [f"p{i:03d}" for i in range(270)]}, k=10)
    assert calls["hnsw"] == [] and calls["exact"] == 1
    assert all(int(pid[1:]) >= 270 for pid in narrow.ids) and len(narrow.ids) == 10


def test_over_fetch_falls_back_to_the_exact_scan_when_too_few_hits_are_allowed(search, monkeypatch):
    monkeypatch.setattr(search, "config", replace(search.config, exact_below=0, hnsw_overfetch=1))
    assert not search.use_hnsw(299)  # factor 1: only an unfiltered catalogue fills n * 1 neighbours twice over
    monkeypatch.setattr(search, "config", replace(search.config, exact_below=0, hnsw_overfetch=4))
    assert search.use_hnsw(150) and not search.use_hnsw(149)  # 4 x share >= 2: half of the 300 products
    calls = {"exact": 0}
    real_hnsw, real_exact = search.dense.search, search.exact_candidates
    monkeypatch.setattr(search.dense, "search", lambda v, n, where: real_hnsw(v, n, where)[:60])  # a short answer
    monkeypatch.setattr(search, "exact_candidates", lambda *a: calls.__setitem__("exact", 1) or real_exact(*a))
    mask = np.zeros(len(search.catalog), dtype=bool)
    mask[::2] = True  # 150 allowed; of HNSW's 60 neighbours at most 60 are: fewer than the 100 wanted
    hits = search.dense_candidates(search.encode("steel hammer"), 100, mask)
    assert calls["exact"] == 1 and len(hits) == 100 and all(mask[row] for row, _ in hits)


def write_tiny_beir(folder: Path) -> Path:
    """A hand-made BEIR folder (a test construction): 10 products, 8 queries, each with one relevant product
    (gain 2) and one judged irrelevant (gain 0)."""
    docs = {f"d{i}": f"{COLOURS[i]} {KINDS[i]}" for i in range(10)}
    queries = {f"q{i}": f"{KINDS[i]} in {COLOURS[i]}" for i in range(8)}
    (folder / "qrels").mkdir(parents=True)
    lines = [json.dumps({"_id": d, "title": t, "text": ""}) for d, t in docs.items()]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps({"_id": q, "text": t}) for q, t in queries.items()))
    judgements = "".join(f"q{i}\td{i}\t2\nq{i}\td{i + 1}\t0\n" for i in range(8))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + judgements)
    return folder


def test_index_tune_writes_a_model_that_loads_and_eval_accepts(settings, tmp_path):
    beir = write_tiny_beir(tmp_path / "beir")
    out = tmp_path / "tuned"
    tuned = CliRunner().invoke(
        app, ["index", "tune", "--beir", str(beir), "--out", str(out), "--holdout", "0.25", "--json"]
    )
    assert tuned.exit_code == 0, tuned.output
    report = json.loads((out / TUNE_FILE).read_text())
    assert report["steps"] >= 1 and report["train_queries"] + report["held_out_queries"] == 8
    assert 0 <= report["dense_alpha"] <= 1
    vectors = Embedder(out).encode(["red cordless drill", "garden hose"])
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)

    index_dir = tmp_path / "eval-index"
    evaluated = CliRunner().invoke(app, ["eval", "retrieval", "--beir", str(beir), "--model", str(out),
                                         "--index-dir", str(index_dir), "--systems", "bm25,hybrid,hybrid_rrf",
                                         "--holdout", "0.25", "--sample", "4", "--json"])  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout)
    assert result["model"] == str(out) and result["fusion"]["dense_alpha_used"] == report["dense_alpha"]
    assert set(result["systems"]) == {"bm25", "hybrid", "hybrid_rrf"} and result["sample"]["queries"] == 4
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["embed_model"] == str(out) and manifest["dense_alpha"] == report["dense_alpha"]
    with pytest.raises(SearchIndexError, match="built with the embedding model"):
        ProductSearch.open_location(IndexLocation(index_dir, "kefu-beir-eval"), Embedder())
