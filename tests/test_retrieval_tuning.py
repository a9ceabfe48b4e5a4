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
from retrieval.fusion import FEATURES, Candidates, convex, fit_alpha, fit_weights, minmax, simplex_grid
from retrieval.hybrid import FusionConfig, ProductSearch
from retrieval.indexer import TUNE_FILE, IndexLocation, build_index
from retrieval.lexical import LexicalIndex, word_matches
from retrieval.tune import batches, with_hard_negatives
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


def test_word_matches_count_query_words_and_adjacent_pairs_in_a_hand_worked_case():
    index = LexicalIndex.build(["DeWalt Cordless Drill Bits Set", "Drill Press", "Cordless Leaf Blower"])
    terms = index.query_terms("cordlss drill bit")  # misspelled: read as "cordless"
    assert terms.words == ["cordlss", "drill", "bit"] and terms.corrections == {"cordlss": ["cordless"]}
    alternatives = terms.alternatives()
    assert word_matches(alternatives, "DeWalt Cordless Drill Bits Set") == (1.0, 1.0)  # 3 of 3 words, 2 of 2 pairs
    assert word_matches(alternatives, "Drill Press") == (pytest.approx(1 / 3), 0.0)
    assert word_matches(alternatives, "Bit for a cordless drill") == (1.0, 0.5)  # "for a" are stopwords
    assert word_matches(index.query_terms("drill").alternatives(), "Drill Press") == (1.0, 0.0)  # one word: no pair
    assert word_matches([], "Drill Press") == (0.0, 0.0)


def test_simplex_grid_holds_every_split_of_the_weight_once():
    grid = simplex_grid(4, 0.05)
    assert grid.shape == (1771, 4)  # C(20 + 3, 3) ways to split 20 steps over 4 weights
    assert len({tuple(row) for row in grid}) == 1771
    assert np.allclose(grid.sum(axis=1), 1) and grid.min() >= 0
    assert simplex_grid(2, 0.5).tolist() == [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]


def test_fit_weights_learns_that_the_whole_query_matters():
    # BM25 puts a title repeating one rare query word first; the relevant title holds every query word.
    queries = [
        Candidates(gains=np.array([0.0, 2.0, 0.0]), lexical=np.array([9.0, 6.0, 1.0]),
                   dense=np.array([0.5, 0.4, 0.6]), ideal_dcg=2.0, coverage=np.array([0.5, 1.0, 0.5]),
                   phrase=np.array([0.0, 1.0, 0.0])),
        Candidates(gains=np.array([1.0, 0.0]), lexical=np.array([3.0, 4.0]), dense=np.array([0.3, 0.2]),
                   ideal_dcg=1.0, coverage=np.array([1.0, 0.5]), phrase=np.array([0.0, 0.0])),
    ]  # fmt: skip
    assert fit_alpha(queries)["train_ndcg@10"] < 1.0  # no convex weight ranks both right
    fitted = fit_weights(queries)
    assert fitted["train_ndcg@10"] == 1.0 and set(fitted["weights"]) == set(FEATURES)
    assert fitted["weights"]["coverage"] + fitted["weights"]["phrase"] > 0
    assert sum(fitted["weights"].values()) == pytest.approx(1)
    only_bm25 = fit_weights([replace(queries[0], gains=np.array([2.0, 0.0, 0.0]))])  # BM25 alone is right
    assert only_bm25["weights"] == {"lexical": 1.0, "dense": 0.0, "coverage": 0.0, "phrase": 0.0}  # ties: BM25


def test_fusion_auto_picks_learned_weights_only_when_fitted_for_the_index():
    weights = {"lexical": 0.1, "dense": 0.2, "coverage": 0.6, "phrase": 0.1}
    auto = FusionConfig(fusion="auto")
    assert auto.resolved({"fusion_weights": weights, "dense_alpha": 0.4}).fusion == "learned"
    assert auto.resolved({"fusion_weights": weights}).weights == weights
    assert auto.resolved({"fusion_weights": None, "dense_alpha": 0.4}).fusion == "convex"
    assert auto.resolved({}).fusion == "rrf"
    assert FusionConfig(fusion="rrf").resolved({"fusion_weights": weights}).fusion == "rrf"  # a set choice stays
    with pytest.raises(SearchIndexError, match="Learned fusion needs weights"):
        FusionConfig(fusion="learned").resolved({})


def test_learned_fusion_ranks_the_title_with_every_query_word_first(tmp_path, embedder):
    texts = ["hammer hammer hammer claw", "steel red hammer", "red paint", "blue hammer", "red ladder"]
    records = [{"product_id": f"h{i}", "text": t} for i, t in enumerate(texts)]
    location = IndexLocation(tmp_path / "learned", "kefu-test-learned")
    build_index(catalog_from_records(records), location, embedder)
    weights = {"lexical": 0.2, "dense": 0.0, "coverage": 0.6, "phrase": 0.2}
    learned = ProductSearch.open_location(location, embedder, FusionConfig(fusion="learned", weights=weights))
    rows, lexical, dense, coverage, phrase = learned.fusion_inputs("red hammer")
    by_id = dict(zip(learned.catalog.ids[rows], zip(coverage, phrase, strict=True), strict=True))
    assert by_id["h1"] == (1.0, 1.0) and by_id["h0"] == (0.5, 0.0) and by_id["h2"] == (0.5, 0.0)
    assert learned.search("red hammer", k=5).ids[0] == "h1"
    assert len(rows) == len(lexical) == len(dense) == 5
    lexical_only = replace(learned.config, weights={"lexical": 1.0})
    bm25_like = ProductSearch(learned.catalog, learned.lexical, learned.dense, embedder, learned.vectors,
                              learned.text_row, lexical_only)  # fmt: skip
    assert bm25_like.search("red hammer", k=5).ids == learned.search("red hammer", k=5, system="bm25").ids


def test_hard_negatives_come_from_judged_low_grades_and_never_share_a_batch_with_themselves():
    texts = {"d1": "red drill", "d2": "blue drill", "d3": "drill bit", "d4": "hose", "d5": "hose reel"}
    queries = {"q1": "red drill", "q2": "garden hose", "q3": "hose reel"}
    qrels = {"q1": {"d1": 2.0, "d3": 1.0, "d2": 0.0}, "q2": {"d4": 2.0, "d5": 0.67}, "q3": {"d5": 2.0}}
    pairs = [
        ("red drill", "red drill"),
        ("red drill", "drill bit"),
        ("garden hose", "hose"),
        ("hose reel", "hose reel"),
    ]
    examples = with_hard_negatives(pairs, texts, queries, qrels, ["q1", "q2", "q3"], max_gain=0.34, seed=0)
    assert examples == [("red drill", "red drill", "blue drill"), ("red drill", "drill bit", "blue drill"),
                        ("garden hose", "hose"), ("hose reel", "hose reel")]  # fmt: skip  # 0.67 is not low
    planned = batches(examples, size=8, seed=0)
    # one shape per batch; a query or a text at most once per batch; a lone triplet still contrasts two texts
    assert sorted((len(b[0]), len(b)) for b in planned) == [(2, 2), (3, 1), (3, 1)]
    for batch in planned:
        docs = [d for example in batch for d in example[1:]]
        assert len(docs) == len(set(docs)) and len({e[0] for e in batch}) == len(batch)
    assert sorted(e for b in planned for e in b) == sorted(examples)


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
    index_dir = tmp_path / "eval-index"
    tuned = CliRunner().invoke(app, ["index", "tune", "--beir", str(beir), "--out", str(out), "--holdout", "0.25",
                                     "--max-pairs", "0", "--hard-negatives", "--index-dir", str(index_dir),
                                     "--json"])  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    report = json.loads((out / TUNE_FILE).read_text())
    assert report["steps"] >= 1 and report["train_queries"] + report["held_out_queries"] == 8
    assert report["hard_negatives"] == report["pairs"] == report["train_queries"]  # each has a gain-0 product
    assert 0 <= report["dense_alpha"] <= 1
    assert set(report["fusion_weights"]) == {"lexical", "dense", "coverage", "phrase"}
    vectors = Embedder(out).encode(["red cordless drill", "garden hose"])
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)

    evaluated = CliRunner().invoke(app, ["eval", "retrieval", "--beir", str(beir), "--model", str(out),
                                         "--index-dir", str(index_dir), "--systems",
                                         "bm25,hybrid,hybrid_convex,hybrid_rrf", "--holdout", "0.25", "--sample",
                                         "4", "--json"])  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout)
    assert result["index_texts_embedded"] == 0  # the tune's index was reused
    assert result["model"] == str(out) and result["fusion"]["dense_alpha_used"] == report["dense_alpha"]
    assert result["fusion"]["fusion"] == "learned" and result["fusion"]["weights_used"] == report["fusion_weights"]
    assert set(result["systems"]) == {"bm25", "hybrid", "hybrid_convex", "hybrid_rrf"}
    assert result["sample"]["queries"] == 4
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["embed_model"] == str(out) and manifest["dense_alpha"] == report["dense_alpha"]
    assert manifest["fusion_weights"] == report["fusion_weights"]
    with pytest.raises(SearchIndexError, match="built with the embedding model"):
        ProductSearch.open_location(IndexLocation(index_dir, "kefu-beir-eval"), Embedder())
