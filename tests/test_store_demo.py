"""The demo store built from Complete Journey: counts match the source files, derived columns are right."""

import json
import shutil

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from kefu import store
from kefu.errors import StoreError
from kefu.store import demo as store_demo
from ui.cli import app

SOURCE = store_demo.default_source()


def source_counts(source) -> dict[str, int]:
    """Row counts of the source files, for checking a built store against them."""
    con = duckdb.connect()
    counts = {
        name: con.execute("SELECT count(*) FROM read_parquet(?)", [str(source / f"{name}.parquet")]).fetchone()[0]
        for name in store_demo.SOURCE_FILES
    }
    counts["baskets"] = con.execute(
        "SELECT count(DISTINCT basket_id) FROM read_parquet(?)", [str(source / "transactions_sample.parquet")]
    ).fetchone()[0]
    con.close()
    return counts


def test_table_counts_match_the_source_files(demo_store):
    counts = source_counts(SOURCE)
    tables = store.info(demo_store)["tables"]
    assert tables["products"] == counts["products"] == 92331
    assert tables["order_items"] == tables["events"] == counts["transactions_sample"] == 75000
    assert tables["orders"] == counts["baskets"] == 47243
    assert tables["campaigns"] == counts["campaign_descriptions"]
    assert tables["campaign_members"] == counts["campaigns"]
    assert tables["coupons"] == counts["coupons"]
    assert tables["coupon_redemptions"] == counts["coupon_redemptions"]


def test_every_household_is_a_customer(demo_store):
    tx = pd.read_parquet(SOURCE / "transactions_sample.parquet")
    demo = pd.read_parquet(SOURCE / "demographics.parquet")
    camp = pd.read_parquet(SOURCE / "campaigns.parquet")
    households = set(tx.household_id) | set(demo.household_id) | set(camp.household_id)
    with store.connect(demo_store) as con:
        customers = con.execute("SELECT customer_id, has_demographics FROM customers").fetchall()
    assert {c for c, _ in customers} == households
    assert sum(has for _, has in customers) == len(demo)


def test_prices_are_median_shelf_prices_from_transactions(demo_store):
    """Independent computation in pandas of the documented price definition."""
    tx = pd.read_parquet(SOURCE / "transactions_sample.parquet")
    catalogue = set(pd.read_parquet(SOURCE / "products.parquet").product_id)
    tx = tx[(tx.quantity > 0) & tx.product_id.isin(catalogue)]  # lines of unknown products price nothing
    shelf = (tx.sales_value + tx.retail_disc + tx.coupon_match_disc) / tx.quantity
    expected = shelf.groupby(tx.product_id).median().round(2)
    with store.connect(demo_store) as con:
        got = dict(con.execute("SELECT product_id, price FROM products WHERE price IS NOT NULL").fetchall())
    assert len(got) == len(expected)
    sample = expected.sample(500, random_state=0)
    for product_id, price in sample.items():
        assert got[product_id] == pytest.approx(price, abs=0.0101)  # rounding half-up vs half-even


def test_titles_and_orders_are_well_formed(demo_store):
    with store.connect(demo_store) as con:
        assert con.execute("SELECT count(*) FROM products WHERE title IS NULL OR title = ''").fetchone()[0] == 0
        title = con.execute("SELECT title FROM products WHERE product_id = '26093'").fetchone()[0]
        assert title == "BREAD:ITALIAN/FRENCH - BREAD [store brand]"
        # an order's customer and time come from its lines
        row = con.execute("""
            SELECT o.customer_id, o.ordered_at, count(*) FROM orders o JOIN order_items i USING (order_id)
            WHERE o.order_id = '31625220889' GROUP BY ALL""").fetchone()
        assert row[0] == "2261" and row[1].year == 2017


def test_cli_build_and_info_json(settings, monkeypatch):
    monkeypatch.setenv("KEFU_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    assert runner.invoke(app, ["store", "build"]).exit_code == 0
    result = runner.invoke(app, ["store", "info", "--json"])
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["tables"]["products"] == 92331 and info["tables"]["orders"] == 47243
    assert info["notes"]["order_items_unknown_product"] == 222  # kept and counted, not dropped
    skipped = runner.invoke(app, ["store", "build", "--if-missing"])
    assert skipped.exit_code == 0 and "exists" in skipped.output


def test_failed_build_leaves_the_previous_store_intact(settings, demo_store, tmp_path):
    target = settings.data_dir / "store.duckdb"
    target.parent.mkdir(parents=True)
    shutil.copy(demo_store, target)
    broken = tmp_path / "broken"
    shutil.copytree(SOURCE, broken)
    (broken / "coupons.parquet").write_bytes(b"not parquet")
    with pytest.raises(StoreError, match="Building the demo store"):
        store_demo.build(broken, target)
    assert store.info(target)["tables"]["products"] == 92331
    (broken / "coupons.parquet").unlink()
    with pytest.raises(StoreError, match="coupons.parquet"):
        store_demo.build(broken, target)


def test_missing_or_corrupt_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="kefu store build"):
        store.info(tmp_path / "none.duckdb")
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(StoreError, match="kefu store build"):
        store.info(bad)
    duckdb.connect(str(tmp_path / "ok.duckdb")).close()


def test_only_priced_products_are_offered(demo_store):
    with store.connect(demo_store) as con:
        unpriced_in_stock = con.execute("SELECT count(*) FROM products WHERE price IS NULL AND in_stock").fetchone()[0]
        priced = con.execute("SELECT count(*) FROM products WHERE price IS NOT NULL").fetchone()[0]
    notes = store.info(demo_store)["notes"]
    assert unpriced_in_stock == 0 and notes["products_offered"] == priced == 92331 - notes["products_without_price"]
