"""The next-basket metrics on small cases worked out by hand (the NBR Reality Check's definitions)."""

from __future__ import annotations

import math

import pytest

from recommend import metrics


def test_recall_counts_the_target_items_in_the_top_k():
    assert metrics.recall(["a", "b", "c", "d"], {"b", "d", "x"}, 2) == pytest.approx(1 / 3)
    assert metrics.recall(["a", "b", "c", "d"], {"b", "d", "x"}, 4) == pytest.approx(2 / 3)


def test_ndcg_divides_by_the_ideal_over_the_whole_target_not_capped_at_k():
    # hits at ranks 2 and 3 of k=3; the target has 4 items, so the ideal sums 4 ranks although k is 3
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)
    assert metrics.ndcg(["a", "b", "c"], {"b", "c", "x", "y"}, 3) == pytest.approx(dcg / ideal)
    assert metrics.ndcg(["b", "c"], {"b", "c"}, 10) == pytest.approx(1.0)


def test_phr_is_one_for_any_hit():
    assert metrics.hit(["a", "b"], {"b"}, 2) == 1.0
    assert metrics.hit(["a", "b"], {"b"}, 1) == 0.0


def test_the_split_keeps_the_ranking_and_leaves_out_customers_without_such_items():
    ranked = {"u1": ["old", "new", "z"], "u2": ["old2", "q"]}
    targets = {"u1": {"old", "new"}, "u2": {"old2"}}
    history = {"u1": {"old"}, "u2": {"old2"}}
    out = metrics.score(ranked, targets, history, ["u1", "u2"], ks=(1, 2))
    assert out["all"]["recall@1"] == pytest.approx((0.5 + 1.0) / 2) and out["all"]["customers"] == 2
    assert out["repeat"]["recall@1"] == pytest.approx(1.0) and out["repeat"]["customers"] == 2
    # u2 has no explore item and is left out; u1's new item is at rank 2 of the unchanged list
    assert out["explore"]["customers"] == 1 and out["explore"]["recall@1"] == 0.0
    assert out["explore"]["recall@2"] == 1.0
    assert out["explore"]["ndcg@2"] == pytest.approx(1 / math.log2(3), abs=1e-4)  # figures are rounded to 4 places
    assert out["explore"]["phr@2"] == 1.0
