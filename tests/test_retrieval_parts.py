"""Retrieval parts without an index: filter validation, BEIR reading and metrics, shopper profiles and
bought-together on the demo store, the lexical side's typo and shorthand expansion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from eval.retrieval import load_beir, mrr, ndcg, read_qrels, recall
from kefu.errors import FilterError, StoreError
from kefu.store import connect
from retrieval.catalog import Catalog, catalog_from_records
from retrieval.filters import Filters
from retrieval.lexical import LexicalIndex, is_shorthand, tokenize
from retrieval.related import bought_together
from retrieval.rerank import MAX_BOOST, ShopperProfile, personal_boost, profile_from_store


def test_filters_validate_and_name_the_field():
    with pytest.raises(FilterError, match="colour: unknown filter field"):
        Filters.parse({"colour": "red"})
    with pytest.raises(FilterError, match="min_price 5.0 is above max_price 1.0"):
        Filters.parse({"min_price": 5, "max_price": 1})
    with pytest.raises(FilterError, match="min_price"):
        Filters.parse({"min_price": "cheap"})
    assert Filters.parse({"departments": "GROCERY"}).departments == ("GROCERY",)
    assert Filters.parse(None).is_empty()


def test_filter_mask_where_and_matches_agree_on_a_small_catalogue():
    df = catalog_from_records(
        [
            {"product_id": "a", "text": "milk", "price": 1.0, "department": "DAIRY", "brand": "Private"},
            {"product_id": "b", "text": "milk", "price": None, "department": "Dairy", "brand": "National"},
            {"product_id": "c", "text": "soap", "price": 4.0, "department": "DRUG GM", "in_stock": False},
        ]
    )
    catalog = Catalog(df)
    cases = [
        (Filters(max_price=2), {"a"}),  # unknown price never passes a price bound
        (Filters(departments=("dairy",)), {"a", "b"}),  # casefolded
        (Filters(exclude_brands=("private",)), {"b", "c"}),
        (Filters(in_stock=True, exclude_ids=("a",)), {"b"}),
        (Filters(min_price=1, max_price=4), {"a", "c"}),
    ]
    for filters, expected in cases:
        assert set(catalog.ids[filters.mask(catalog)]) == expected
        assert {r["product_id"] for r in df.to_dict("records") if filters.matches(r)} == expected
    where = Filters(max_price=2, departments=("Dairy",)).chroma_where()
    assert where == {"$and": [{"price": {"$lte": 2.0}}, {"department": {"$in": ["dairy"]}}]}


def test_catalogue_rejects_duplicate_and_missing_ids():
    with pytest.raises(StoreError, match="Duplicate"):
        catalog_from_records([{"product_id": "a", "text": "x"}, {"product_id": "a", "text": "y"}])
    with pytest.raises(StoreError, match="lack text"):
        catalog_from_records([{"product_id": "a"}])


def test_lexical_expansion_handles_typos_and_shorthand():
    index = LexicalIndex.build(
        ["SOFT DRINK POWDER - PWDR/CRYSTL DRNK MX", "CHOCOLATE CANDY BAR", "FROZEN CHICKEN BREAST", "CAN CATFD GOURMET"]
    )
    assert index.query_terms("choclate").corrections == {"choclate": ["chocolate"]}
    assert index.query_terms("chkn").corrections == {"chkn": ["chicken"]}
    assert index.query_terms("choc").corrections == {"choc": ["chocolate"]}
    assert index.query_terms("zzzz").unknown == ["zzzz"]
    assert is_shorthand("drnk", "drink") and is_shorthand("pwdr", "powdered")
    assert not is_shorthand("gun", "gluten") and not is_shorthand("cat", "chocolate")
    assert tokenize("Crackers, the FAMILY size!") == ["cracker", "family"]
    rows = [row for row, _ in index.search(index.query_terms("choclate bar"), 10)]
    assert rows == [1]
    assert index.search(index.query_terms("chicken"), 10, np.array([1, 1, 0, 1], dtype=bool)) == []


def test_shopper_words_stand_in_for_what_the_catalogue_calls_them():
    index = LexicalIndex.build([
        "SOFT DRINKS 12/18&15PK CAN CAR - SOFT DRINKS, 12 OZ", "COLD AND FLU - COUGH SYRUP", "CHEESE: SHREDDED",
        "MACARONI & CHEESE DNRS - DINNER MXS:DRY", "FROZEN SIDE DISH (MAC&CHS) - FROZEN",
    ])  # fmt: skip
    cola = index.query_terms("a 12 pack of cola")
    assert cola.corrections["cola"] == ["soft", "drink"] and "cold" not in cola.tokens  # not one letter from cold
    assert [row for row, _ in index.search(cola, 1)] == [0]
    mac = index.query_terms("mac and cheese")
    assert mac.corrections == {"mac": ["macaroni"]} and mac.tokens == ["mac", "macaroni", "cheese"]
    assert [row for row, _ in index.search(mac, 2)] == [3, 4]  # the dinners, then MAC&CHS; plain cheese after
    assert index.query_terms("cheese").corrections == {}  # a word the catalogue uses as written stays alone
    bare = LexicalIndex.build(["COLD AND FLU - COUGH SYRUP"])  # no soft drinks: the map's words are not there
    assert bare.query_terms("cola").corrections == {"cola": ["cold"]}  # so spelling decides, as before


def test_metrics_match_a_reference_and_a_hand_worked_example():
    gains = {"d1": 2.0, "d2": 1.0, "d3": 0.0, "d4": 1.0}
    ranked = ["d3", "d1", "x", "d2"]
    # sklearn's ndcg_score (linear gains) over the same full ranking
    docs = ranked + ["d4"]
    true = np.array([[gains.get(d, 0.0) for d in docs]])
    scores = np.array([[5, 4, 3, 2, 1]])
    assert ndcg(docs, gains, 10) == pytest.approx(ndcg_score(true, scores, k=10))
    assert ndcg(docs, gains, 3) == pytest.approx(ndcg_score(true, scores, k=3))
    assert ndcg(ranked, gains, 2) == pytest.approx((2 / np.log2(3)) / (2 + 1 / np.log2(3)))
    assert recall(ranked, gains, 100) == pytest.approx(2 / 3)
    assert mrr(ranked, gains, 10) == 0.5 and mrr(ranked, gains, 1) == 0.0


def test_beir_reader_errors_name_file_and_line(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"_id": "1", "title": "Red shirt", "text": ""}) + "\n{bad\n")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "red shirt"}) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t1\t2\n")
    with pytest.raises(StoreError, match="corpus.jsonl:2: not valid JSON"):
        load_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"title": "no id"}) + "\n")
    with pytest.raises(StoreError, match="corpus.jsonl:1: .* _id"):
        load_beir(tmp_path)
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t1\thigh\n")
    with pytest.raises(StoreError, match="test.tsv:2: score 'high'"):
        read_qrels(tmp_path / "qrels" / "test.tsv")
    with pytest.raises(StoreError, match="Missing"):
        load_beir(tmp_path / "nowhere")


def test_profile_from_store_reflects_purchases(demo_store):
    with connect(demo_store) as con:
        profile = profile_from_store(con, "1111")
        expected_lines = con.execute(
            "SELECT count(*) FROM order_items JOIN orders USING (order_id) "
            "WHERE customer_id = '1111' AND NOT is_return AND quantity > 0"
        ).fetchone()[0]
        with pytest.raises(StoreError, match="No customer"):
            profile_from_store(con, "nobody")
    assert profile.lines == expected_lines > 100
    assert sum(profile.category_affinity.values()) <= 1.0 + 1e-9
    assert 0 <= profile.private_label_share <= 1
    assert profile.price_p25 is not None and profile.price_p25 <= profile.price_p75
    assert profile.repurchase_days and all(d >= 0 for d in profile.days_since.values())


def test_personal_boost_is_bounded_and_explained():
    profile = ShopperProfile(
        customer_id="c",
        lines=10,
        category_affinity={"MILK": 0.9},
        department_share={"DAIRY": 1.0},
        private_label_share=0.8,
        price_p25=1,
        price_p75=3,
    )
    boost, reasons = personal_boost(
        {"category": "MILK", "department": "DAIRY", "brand": "Private", "price": 2.0}, profile
    )
    assert boost == pytest.approx(MAX_BOOST)
    assert {r.kind for r in reasons} == {"personal"} and [r.text for r in reasons] == [
        "you often buy milk",
        "you often buy PRIVATE-label milk",
        "within your usual price range ($1.00–$3.00)",
    ]
    assert personal_boost({"category": "SOAP", "department": "DRUG", "brand": "National", "price": 9.0}, profile) == (
        0.0,
        [],
    )
    due = profile.model_copy(update={"repurchase_days": {"SOAP": 30.0}, "days_since": {"SOAP": 45}})
    boost, reasons = personal_boost({"category": "SOAP", "department": "DRUG", "brand": "National"}, due)
    assert boost == pytest.approx(0.05)
    assert [r.text for r in reasons] == ["you usually rebuy soap every ~30 days; last time was 45 days ago"]
    not_due = due.model_copy(update={"days_since": {"SOAP": 10}})
    assert personal_boost({"category": "SOAP"}, not_due) == (0.0, [])


def test_bought_together_uses_basket_cooccurrence_with_min_support(demo_store):
    with connect(demo_store) as con:
        top = con.execute("SELECT product_id FROM order_items GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        pairs = bought_together(con, top, k=5, min_support=3)
        assert pairs and all(p.support >= 3 and p.product_id != top for p in pairs)
        assert [p.support for p in pairs] == sorted((p.support for p in pairs), reverse=True)
        partner = pairs[0].product_id
        shared = con.execute(
            "SELECT count(*) FROM (SELECT order_id FROM order_items WHERE product_id = ? AND NOT is_return "
            "INTERSECT SELECT order_id FROM order_items WHERE product_id = ? AND NOT is_return)",
            [top, partner],
        ).fetchone()[0]
        assert pairs[0].support == shared
        assert all(p.support >= 1000 for p in bought_together(con, top, min_support=1000)) is True
        assert bought_together(con, top, min_support=10**6) == []
        cheap = bought_together(con, top, k=5, min_support=2, filters={"max_price": 1})
        assert all(p.price is not None and p.price <= 1 for p in cheap)
        with pytest.raises(StoreError, match="No product"):
            bought_together(con, "no-such-product")
