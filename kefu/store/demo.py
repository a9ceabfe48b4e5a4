"""Build the demo store from dunnhumby / 84.51° *The Complete Journey* (CC0), kept in ``data/completejourney``.

Mapping onto the store schema (every source row is kept; row counts match the source files):
- products: one per source product. ``title`` = product type and category, package size, and "[store brand]"
  for private label. ``price`` = median shelf price per unit over the sampled transaction lines with a positive
  quantity, shelf price = (sales_value + retail_disc + coupon_match_disc) / quantity; NULL when never sold in
  the sample (the transactions are a 1-in-20 sample of 2017).
- customers: every household seen in transactions, demographics or campaigns; demographics where known.
- orders: one per basket (``basket_id``), at its first line's timestamp, status "completed".
- order_items: one per transaction line (``amount`` = sales_value, net of discounts), including lines whose
  product is missing from the product file (counted by ``kefu store info``) and zero-quantity lines.
- events: one "purchase" event per transaction line.
- campaigns / campaign_members / coupons / coupon_redemptions: as published.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from kefu.errors import StoreError
from kefu.store import write_store

SOURCE_FILES = (
    "products", "transactions_sample", "demographics", "campaigns",
    "campaign_descriptions", "coupons", "coupon_redemptions",
)  # fmt: skip


def default_source() -> Path:
    """``data/completejourney`` at the repository root (beside the packages)."""
    return Path(__file__).resolve().parents[2] / "data" / "completejourney"


def build(source: Path, store_path: Path) -> None:
    missing = [f"{name}.parquet" for name in SOURCE_FILES if not (source / f"{name}.parquet").is_file()]
    if missing:
        raise StoreError(f"{source} lacks {', '.join(missing)}; point --source at a copy of Complete Journey.")

    def fill(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        for name in SOURCE_FILES:
            con.read_parquet(str(source / f"{name}.parquet")).to_view(f"src_{name}")
        con.execute(DEMO_SQL)
        return {
            "source": "dunnhumby The Complete Journey 2.0 (CC0), transactions_sample",
            "source_dir": str(source),
        }

    try:
        write_store(store_path, fill)
    except duckdb.Error as exc:
        raise StoreError(f"Building the demo store from {source} failed: {exc}") from exc


DEMO_SQL = """
INSERT INTO products
WITH prices AS (
    SELECT product_id,
           round(median((sales_value + retail_disc + coupon_match_disc) / quantity), 2) AS price
    FROM src_transactions_sample WHERE quantity > 0 GROUP BY product_id
)
SELECT p.product_id,
       concat_ws(', ',
           coalesce(CASE WHEN p.product_type IS NOT NULL AND p.product_category IS NOT NULL
                              AND p.product_type <> p.product_category
                         THEN p.product_type || ' - ' || p.product_category END,
                    p.product_type, p.product_category, p.department || ' item #' || p.product_id),
           p.package_size)
         || CASE WHEN p.brand = 'Private' THEN ' [store brand]' ELSE '' END AS title,
       NULL AS description,
       p.department, p.product_category, p.product_type, p.brand, p.manufacturer_id, p.package_size,
       pr.price, pr.price IS NOT NULL, NULL  -- never sold in the sample: no price, so not offered
FROM src_products p LEFT JOIN prices pr USING (product_id);

INSERT INTO customers
WITH ids AS (
    SELECT household_id FROM src_transactions_sample
    UNION SELECT household_id FROM src_demographics
    UNION SELECT household_id FROM src_campaigns
)
SELECT ids.household_id, d.age, d.income, d.home_ownership, d.marital_status, d.household_size,
       d.household_comp, d.kids_count, d.household_id IS NOT NULL
FROM ids LEFT JOIN src_demographics d USING (household_id);

INSERT INTO orders
SELECT basket_id, any_value(household_id), min(transaction_timestamp), 'completed', any_value(store_id)
FROM src_transactions_sample GROUP BY basket_id;

INSERT INTO order_items
SELECT basket_id,
       row_number() OVER (PARTITION BY basket_id ORDER BY transaction_timestamp, product_id, sales_value),
       product_id, quantity, sales_value, retail_disc, coupon_disc, coupon_match_disc, quantity < 0
FROM src_transactions_sample;

INSERT INTO events
SELECT household_id, transaction_timestamp, 'purchase', product_id, basket_id FROM src_transactions_sample;

INSERT INTO campaigns SELECT campaign_id, campaign_type, start_date, end_date FROM src_campaign_descriptions;
INSERT INTO campaign_members SELECT campaign_id, household_id FROM src_campaigns;
INSERT INTO coupons SELECT coupon_upc, product_id, campaign_id FROM src_coupons;
INSERT INTO coupon_redemptions
SELECT household_id, coupon_upc, campaign_id, redemption_date FROM src_coupon_redemptions;
"""
