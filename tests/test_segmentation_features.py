"""Behaviour features: checked against pandas on the real demo store and against hand-worked values on a tiny store."""

from __future__ import annotations

import shutil
from datetime import datetime

import duckdb
import pandas as pd
import pytest

from kefu.errors import StoreError
from kefu.store import schema_sql
from segmentation.features import FEATURE_COLUMNS, build_features, column_name


@pytest.fixture(scope="module")
def demo_con(demo_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "store.duckdb"
    shutil.copy(demo_store, path)
    con = duckdb.connect(str(path))
    yield con
    con.close()


def test_demo_store_features_match_pandas(demo_con):
    n = build_features(demo_con)
    feats = demo_con.sql("SELECT * FROM customer_features").df().set_index("customer_id")
    orders = demo_con.sql("SELECT * FROM orders").df()
    items = demo_con.sql("SELECT order_id, amount FROM order_items").df()

    assert n == len(feats) == orders["customer_id"].nunique() == 2377
    assert list(feats.reset_index().columns[: len(FEATURE_COLUMNS)]) == list(FEATURE_COLUMNS)
    as_of = pd.Timestamp(orders["ordered_at"].max().normalize() + pd.Timedelta(days=1))
    assert (feats["as_of"] == as_of).all()

    per_customer = orders.groupby("customer_id")["ordered_at"].agg(["count", "max", "min"])
    spend = items.merge(orders, on="order_id").groupby("customer_id")["amount"].sum()
    assert (feats["frequency"] == per_customer["count"]).all()
    assert (feats["recency_days"] == (as_of - per_customer["max"].dt.normalize()).dt.days).all()
    assert (feats["tenure_days"] == (as_of - per_customer["min"].dt.normalize()).dt.days).all()
    assert feats["monetary"].round(6).equals(spend.reindex(feats.index).round(6))

    one_order = feats["frequency"] == 1
    assert feats.loc[one_order, "interpurchase_days"].isna().all()
    assert feats.loc[~one_order, "interpurchase_days"].notna().all()
    shares = ["discount_share", "coupon_share", "private_label_share", "weekend_share", "evening_share"]
    dept = department_columns(demo_con)
    assert dept[:3] == ["dept_grocery", "dept_drug_gm", "dept_produce"] and len(dept) == 8
    assert feats[shares + dept].ge(0).all().all() and feats[shares + dept].le(1 + 1e-9).all().all()
    assert (feats[dept].sum(axis=1) <= 1 + 1e-9).all()
    # The demo store has one purchase event per order line and no views or carts.
    assert feats["n_purchases"].sum() == 75_000 and feats["n_views"].sum() == 0
    assert feats["top_department"].value_counts().index[0] == "GROCERY"


def test_earlier_as_of_leaves_out_later_orders(demo_con):
    n = build_features(demo_con, as_of=datetime(2017, 4, 1))
    feats = demo_con.sql("SELECT * FROM customer_features").df()
    buyers = demo_con.sql("SELECT count(DISTINCT customer_id) FROM orders WHERE ordered_at < '2017-04-01'").fetchall()
    assert n == buyers[0][0] < 2377
    assert feats["recency_days"].min() >= 1 and feats["tenure_days"].max() <= 90
    assert (feats["trend_90d"] == 1).all()  # every tenure is within the 90-day window
    with pytest.raises(StoreError, match="No customer has an order before"):
        build_features(demo_con, as_of=datetime(2016, 1, 1))


def tiny_store() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(schema_sql())
    con.execute("""
        INSERT INTO products VALUES
          ('p1', 'milk', NULL, 'DAIRY', 'MILK', NULL, 'Private', NULL, NULL, 1.0, TRUE, NULL),
          ('p2', 'tv', NULL, 'ELECTRONICS & AV', 'TV', NULL, 'National', NULL, NULL, 100.0, TRUE, NULL);
        INSERT INTO orders VALUES
          ('o1', 'c1', '2024-01-06 18:00:00', 'completed', NULL),  -- Saturday evening
          ('o2', 'c1', '2024-01-10 09:30:00', 'completed', NULL),
          ('o3', 'c1', '2024-01-12 10:00:00', 'cancelled', NULL),  -- not counted
          ('o4', 'c2', '2024-01-09 12:00:00', 'completed', NULL);
        INSERT INTO order_items VALUES
          ('o1', 1, 'p1', 2, 3.0, 1.0, 0, 0, FALSE),
          ('o1', 2, 'p2', 1, 100.0, 0, 10.0, 0, FALSE),
          ('o2', 1, 'p2', -1, -100.0, 0, 0, 0, TRUE),
          ('o3', 1, 'p1', 1, 1.0, 0, 0, 0, FALSE),
          ('o4', 1, 'p1', 1, 0.0, 0, 0, 0, FALSE);
        INSERT INTO events VALUES ('c1', '2024-01-05', 'view', 'p2', NULL), ('c1', '2024-01-05', 'cart', 'p2', NULL),
                                  ('c1', '2024-01-06 18:00:00', 'purchase', 'p1', 'o1');
        INSERT INTO coupon_redemptions VALUES ('c1', 'u1', 'k1', '2024-01-06'), ('c1', 'u2', 'k1', '2024-02-01');
    """)
    return con


def test_hand_worked_values():
    con = tiny_store()
    assert build_features(con) == 2
    c1, c2 = con.sql("SELECT * FROM customer_features ORDER BY customer_id").df().to_dict("records")
    assert c1["as_of"] == pd.Timestamp("2024-01-13")  # the day after the store's last order (even a cancelled one)
    assert (c1["recency_days"], c1["frequency"], c1["tenure_days"]) == (3, 2, 7)
    assert c1["monetary"] == pytest.approx(3.0)  # 103 bought, 100 returned
    assert c1["avg_basket_value"] == pytest.approx(1.5) and c1["avg_basket_size"] == pytest.approx(1.5)
    assert c1["interpurchase_days"] == pytest.approx(3 + 15.5 / 24)
    assert c1["discount_share"] == pytest.approx(11 / 114)
    assert c1["coupon_share"] == pytest.approx(0.5)
    assert c1["n_coupon_redemptions"] == 1
    assert c1["private_label_share"] == pytest.approx(3 / 103)
    assert c1["weekend_share"] == pytest.approx(0.5) and c1["evening_share"] == pytest.approx(0.5)
    assert c1["hour_mean"] == pytest.approx((18 + 9.5) / 2)
    assert (c1["n_views"], c1["n_carts"], c1["n_purchases"]) == (1, 1, 1)
    assert (c1["top_department"], c1["top_category"]) == ("ELECTRONICS & AV", "TV")
    assert c1["dept_electronics_av"] == pytest.approx(100 / 103) and c1["dept_dairy"] == pytest.approx(3 / 103)
    # A zero-amount order still counts as an order; shares with a zero denominator are 0, not NULL.
    assert (c2["frequency"], c2["monetary"], c2["private_label_share"]) == (1, 0.0, 0.0)
    assert pd.isna(c2["interpurchase_days"]) and c2["trend_90d"] == 1


def test_column_names_and_empty_store():
    assert column_name("DRUG GM") == "dept_drug_gm" and column_name("MEAT-PCKGD") == "dept_meat_pckgd"
    con = duckdb.connect()
    con.execute(schema_sql())
    with pytest.raises(StoreError, match="no orders"):
        build_features(con)


def department_columns(con) -> list[str]:
    """The ``dept_*`` share columns of an existing ``customer_features`` table."""
    cols = [r[0] for r in con.execute("DESCRIBE customer_features").fetchall()]
    return [c for c in cols if c.startswith("dept_")]
