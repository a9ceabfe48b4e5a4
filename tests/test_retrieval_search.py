"""Hybrid product search over a real index (real embedder, embedded Chroma, bm25s) of a demo-store subset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kefu.embedder import Embedder
from kefu.errors import FilterError, SearchIndexError
from kefu.settings import Settings
from kefu.store import connect
from retrieval.catalog import catalog_from_store
from retrieval.filters import Filters
from retrieval.hybrid import ProductSearch, SearchQueryError
from retrieval.indexer import IndexLocation, index_store
from retrieval.related import similar_items
from retrieval.rerank import MAX_BOOST, profile_from_store

SUBSET = """
DELETE FROM products WHERE NOT ((hash(product_id) % 120 = 0)
    OR (category IN ('CAT FOOD', 'PWDR/CRYSTL DRNK MX', 'CANDY - PACKAGED', 'FLUID MILK PRODUCTS', 'CHEESE')
        AND hash(product_id) % 20 = 0))
"""


def subset_store(demo_store: Path, dest: Path, sql: str = SUBSET) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_store, dest)
    con = duckdb.connect(str(dest))
    con.execute(sql)
    con.execute("CHECKPOINT")
    con.close()
    return dest


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def indexed(demo_store, tmp_path_factory, embedder):
    data = tmp_path_factory.mktemp("retrieval")
    settings = Settings(data_dir=data, chroma_url=None)
    subset_store(demo_store, settings.store_path)
    report = index_store(settings)
    return settings, report


@pytest.fixture(scope="module")
def search(indexed, embedder) -> ProductSearch:
    return ProductSearch.open(indexed[0], embedder)


@pytest.fixture(scope="module")
def catalog(indexed):
    with connect(indexed[0].store_path) as con:
        return {r["product_id"]: r for r in catalog_from_store(con).to_dict("records")}


@pytest.fixture(scope="module")
def profile(demo_store):
    with connect(demo_store) as con:  # the shopper's whole history, not just the indexed subset
        return profile_from_store(con, "1111")


def test_index_covers_the_store_and_dedupes_texts(indexed, search):
    _, report = indexed
    assert report["products"] == len(search.catalog) == search.dense.count() > 700
    assert report["embedded"] == report["products"]
    assert report["distinct_texts_embedded"] < report["products"]


def test_plain_query_finds_the_category_with_reasons(search):
    response = search.search("cat food", k=5)
    assert len(response.results) == 5
    assert all("CAT FOOD" in r.title for r in response.results)
    reasons = {r.kind: r for r in response.results[0].reasons}
    assert reasons["keyword"].rank >= 1 and reasons["semantic"].rank >= 1  # the ranks are data, not text
    assert reasons["keyword"].text.startswith("matches ") and "rank" not in reasons["keyword"].text


@pytest.mark.parametrize(("query", "word", "expected"), [
    ("choclate candy", "choclate", "CHOCOLATE"),   # typo
    ("powder drink mix", None, "PWDR/CRYSTL DRNK MX"),  # catalogue shorthand
    ("chkn breast", "chkn", None),                 # shopper shorthand
])  # fmt: skip
def test_typos_and_shorthand_still_match(search, query, word, expected):
    response = search.search(query, k=5, system="bm25")
    assert response.results, query
    if word:
        assert word in response.corrections
    if expected:
        assert any(expected in r.title for r in response.results)


def test_chkn_reads_as_chicken(search):
    assert "chicken" in search.lexical.query_terms("chkn").corrections["chkn"]
    assert search.lexical.query_terms("pwdr").tokens == ["pwdr"]  # known words are left alone


PRICES = st.sampled_from([None, 0.0, 0.5, 1.0, 1.99, 2.5, 3.0, 5.0, 10.0])


@st.composite
def random_filters(draw, ids):
    lo, hi = draw(PRICES), draw(PRICES)
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    departments = draw(
        st.lists(st.sampled_from(["GROCERY", "DRUG GM", "produce", "Meat", "PASTRY"]), max_size=2, unique=True)
    )
    return Filters(
        min_price=lo,
        max_price=hi,
        departments=tuple(departments),
        brands=tuple(draw(st.lists(st.sampled_from(["National", "private"]), max_size=1))),
        exclude_brands=tuple(draw(st.lists(st.sampled_from(["Private"]), max_size=1))),
        exclude_ids=tuple(draw(st.lists(st.sampled_from(ids), max_size=5))),
        in_stock=draw(st.sampled_from([None, True])),
    )


def test_hard_filters_are_never_violated(search, catalog, profile):
    ids = sorted(catalog)[:400]
    queries = st.sampled_from(["milk", "cat food", "cheese", "chocolate candy", "soap", "drink", "frozen pizza"])

    @hsettings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        filters=random_filters(ids),
        query=queries,
        system=st.sampled_from(["hybrid", "bm25", "dense"]),
        personal=st.booleans(),
    )
    def check(filters, query, system, personal):
        allowed = {pid for pid, rec in catalog.items() if filters.matches(rec)}
        response = search.search(query, filters, k=20, customer=profile if personal else None, system=system)
        assert {r.product_id for r in response.results} <= allowed
        if allowed and system != "bm25":
            assert response.results  # the dense side finds something whenever anything is allowed
        # each side on its own, before any re-check
        vector = search.encode(query)
        assert {pid for pid, _ in search.dense.search(vector, 50, filters.chroma_where())} <= allowed
        mask = filters.mask(search.catalog)
        hits = search.lexical.search(search.lexical.query_terms(query), 50, mask)
        assert {search.catalog.ids[row] for row, _ in hits} <= allowed
        exact = search.dense_candidates(vector, 50, mask)
        assert {search.catalog.ids[row] for row, _ in exact} <= allowed
        if allowed:  # the exact filtered side really returns the nearest allowed product
            best = max(
                allowed, key=lambda pid: float(search.vectors[search.text_row[search.catalog.row_of[pid]]] @ vector)
            )
            assert exact[0][1] == pytest.approx(
                float(search.vectors[search.text_row[search.catalog.row_of[best]]] @ vector), abs=1e-5
            )

    check()


def test_personal_reranking_is_bounded_explained_and_optional(search, profile):
    assert profile.lines > 50 and profile.price_p25 <= profile.price_p75
    plain = search.search("cheese", k=20)
    personal = search.search("cheese", k=20, customer=profile)
    base = {r.product_id: r.score for r in search.search("cheese", k=100).results}
    assert all(r.score <= base[r.product_id] * (1 + MAX_BOOST) + 1e-9 for r in personal.results)
    assert all(r.score >= base[r.product_id] - 1e-9 for r in personal.results)
    reasons = [x for r in personal.results for x in r.reasons if x.kind == "personal"]
    assert any(x.text.startswith(("within your usual price range", "you often buy")) for x in reasons)
    assert not any(x.kind == "personal" for r in plain.results for x in r.reasons)


def test_empty_query_browses_with_filters_else_errors(search, catalog):
    with pytest.raises(SearchQueryError, match="Empty query"):
        search.search("   ")
    response = search.search("", {"departments": ["grocery"], "max_price": 2}, k=5)
    assert response.system == "browse" and response.results
    for r in response.results:
        assert r.department == "GROCERY" and r.price <= 2
    pops = [search.catalog.popularity[search.catalog.row_of[r.product_id]] for r in response.results]
    assert pops == sorted(pops, reverse=True)


def test_huge_query_is_truncated_with_a_warning(search):
    response = search.search("milk " * 20_000, k=3)
    assert len(response.query) == search.config.max_query_chars
    assert any("truncated" in w for w in response.warnings)
    assert response.results


def test_bad_filters_name_the_field(search):
    with pytest.raises(FilterError, match="colour"):
        search.search("milk", {"colour": "red"})
    with pytest.raises(FilterError, match="min_price"):
        search.search("milk", {"min_price": 5, "max_price": 1})
    with pytest.raises(FilterError, match="max_price"):
        search.search("milk", {"max_price": -1})
    with pytest.raises(SearchQueryError, match="k must"):
        search.search("milk", k=0)


def test_concurrent_searches_match_serial_results(search, profile):
    queries = ["milk", "cat food", "choclate", "cheese", "soap", "drink mix", "candy bar", "cereal"]
    expected = {q: search.search(q, {"max_price": 5}, customer=profile).ids for q in queries}
    errors, mismatches = [], []

    def worker(offset: int) -> None:
        try:
            for i in range(len(queries)):
                q = queries[(i + offset) % len(queries)]
                if search.search(q, {"max_price": 5}, customer=profile).ids != expected[q]:
                    mismatches.append(q)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not mismatches


def test_similar_items_excludes_itself_and_respects_filters(search):
    pid = search.search("cat food", k=1).ids[0]
    similar = similar_items(search, pid, k=5)
    assert len(similar) == 5 and pid not in {r.product_id for r in similar}
    assert sum("CAT" in r.title for r in similar) >= 3
    cheap = similar_items(search, pid, k=5, filters={"max_price": 2})
    assert all(r.price is not None and r.price <= 2 for r in cheap)


def test_cli_search_json_and_errors_without_traceback(indexed, tmp_path):
    settings, _ = indexed
    env = {**os.environ, "KEFU_DATA_DIR": str(settings.data_dir)}
    kefu = str(Path(sys.executable).parent / "kefu")
    out = subprocess.run(
        [kefu, "search", "cat food", "--max-price", "5", "-k", "3", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    import json

    results = json.loads(out.stdout)["results"]
    assert 0 < len(results) <= 3 and all(r["price"] <= 5 for r in results)
    env["KEFU_DATA_DIR"] = str(tmp_path / "empty")
    out = subprocess.run([kefu, "search", "milk"], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 2 and "kefu index" in out.stderr and "Traceback" not in out.stderr


def test_missing_and_corrupt_index_say_how_to_rebuild(demo_store, tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(SearchIndexError, match="`kefu index`"):
        ProductSearch.open(settings, embedder)
    subset_store(demo_store, settings.store_path, "DELETE FROM products WHERE hash(product_id) % 400 <> 0")
    index_store(settings)
    location = IndexLocation.from_settings(settings)
    location.catalog_path.write_bytes(b"not parquet")
    with pytest.raises(SearchIndexError, match="--rebuild"):
        ProductSearch.open(settings, embedder)
    report = index_store(settings)  # a plain re-index repairs it
    assert report["embedded"] == report["products"]
    location.vectors_path.unlink()
    with pytest.raises(SearchIndexError, match="--rebuild"):
        ProductSearch.open(settings, embedder)
    assert index_store(settings)["distinct_texts_embedded"] == 0  # vectors recovered from Chroma, not re-embedded
    ProductSearch.open(settings, embedder)
    shutil.rmtree(location.lexical_path)
    (location.lexical_path).mkdir()
    with pytest.raises(SearchIndexError, match="--rebuild"):
        ProductSearch.open(settings, embedder)


def test_reindex_embeds_only_changed_products_and_handles_deletions(demo_store, tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "data")
    subset_store(demo_store, settings.store_path, "DELETE FROM products WHERE hash(product_id) % 300 <> 0")
    first = index_store(settings)
    with connect(settings.store_path) as con:
        ids = [r[0] for r in con.execute("SELECT product_id FROM products ORDER BY product_id LIMIT 3").fetchall()]
    con = duckdb.connect(str(settings.store_path))
    con.execute("UPDATE products SET title = 'ZEBRA STRIPED UMBRELLA - RAINWEAR' WHERE product_id = ?", [ids[0]])
    con.execute("UPDATE products SET price = 123.45 WHERE product_id = ?", [ids[1]])
    con.execute("DELETE FROM products WHERE product_id = ?", [ids[2]])
    con.execute("INSERT INTO products (product_id, title, department) VALUES ('new-1', 'KUMQUAT JAM', 'GROCERY')")
    con.execute("CHECKPOINT")
    con.close()
    second = index_store(settings)
    assert second["products"] == first["products"]
    assert (second["embedded"], second["metadata_updated"], second["deleted"]) == (2, 1, 1)
    assert second["distinct_texts_embedded"] == 2
    search = ProductSearch.open(settings, embedder)
    assert search.dense.count() == second["products"]
    assert search.search("zebra umbrella", k=1).ids == [ids[0]]
    assert search.search("kumquat jam", k=1).ids == ["new-1"]
    assert ids[2] not in search.catalog.row_of and search.dense.vector(ids[2]) is None
    assert search.search("anything", {"min_price": 100}, k=5).ids == [ids[1]]
    assert index_store(settings)["embedded"] == 0


def test_reindexing_an_unchanged_store_writes_nothing_and_loads_no_model(demo_store, tmp_path, monkeypatch):
    """A second `make demo`: `kefu index` finds the snapshot equal to the store and stops there."""
    settings = Settings(data_dir=tmp_path / "data")
    subset_store(demo_store, settings.store_path, "DELETE FROM products WHERE hash(product_id) % 500 <> 0")
    index_store(settings)
    files = sorted(settings.index_dir.rglob("*"))
    written = {f: f.stat().st_mtime_ns for f in files if f.is_file()}
    monkeypatch.setattr(Embedder, "model", property(lambda self: pytest.fail("the model was loaded")))
    again = index_store(settings)
    assert again["unchanged"] and again["embedded"] == 0
    assert {f: f.stat().st_mtime_ns for f in written} == written
    con = duckdb.connect(str(settings.store_path))
    con.execute("UPDATE products SET price = 99.5 WHERE product_id = (SELECT min(product_id) FROM products)")
    con.execute("CHECKPOINT")
    con.close()
    changed = index_store(settings)  # a price only: metadata, still no model
    assert "unchanged" not in changed and changed["metadata_updated"] == 1
