"""Personal re-ranking: a bounded, explainable boost from what a shopper usually buys.

``ShopperProfile`` is the input this needs; ``profile_from_store`` computes it from the store's orders (the
segmentation package may supply richer profiles later). Re-ranking only reorders candidates that already passed
the hard filters, and multiplies a score by at most ``1 + MAX_BOOST``, so relevance still dominates.

Boost parts (each with its reason):
- category affinity: up to 0.15 × min(1, share of the shopper's lines in the product's category / 0.2);
- department: up to 0.05 × min(1, department share / 0.4);
- store brand: 0.05 when the product is private label and the shopper's private-label share is ≥ 0.3;
- price: 0.05 when the price lies within the shopper's usual band (p25–p75 of shelf prices paid);
- repurchase: 0.05 when the shopper rebuys the category on a cycle (median gap between purchase days, from at
  least two gaps) and that cycle has elapsed since their last purchase, as of the store's latest order.
The total is capped at ``MAX_BOOST``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from kefu.errors import StoreError
from retrieval.reasons import Reason

MAX_BOOST = 0.3
OFTEN_SHARE = 0.05  # a category this share of the lines is one the shopper "often buys"
PRIVATE_OFTEN = 0.3


class ShopperProfile(BaseModel):
    customer_id: str
    lines: int = Field(0, description="Order lines seen (returns excluded).")
    category_affinity: dict[str, float] = Field(default_factory=dict, description="category -> share of lines")
    department_share: dict[str, float] = Field(default_factory=dict)
    private_label_share: float = 0.0
    price_p25: float | None = None
    price_p75: float | None = None
    household: dict[str, str] = Field(default_factory=dict, description="Demographic traits where known.")
    repurchase_days: dict[str, float] = Field(
        default_factory=dict, description="category -> median days between purchase days"
    )
    days_since: dict[str, int] = Field(
        default_factory=dict, description="category -> days since last bought, as of the store's last order"
    )


PROFILE_SQL = """
WITH lines AS (
    SELECT p.category, p.department, p.brand, o.ordered_at::DATE AS day,
           (i.amount + i.retail_disc + i.coupon_match_disc) / i.quantity AS unit_price
    FROM order_items i JOIN orders o USING (order_id) LEFT JOIN products p USING (product_id)
    WHERE o.customer_id = ? AND NOT i.is_return AND i.quantity > 0
)
SELECT category, department, brand, day, unit_price, (SELECT max(ordered_at)::DATE FROM orders) AS as_of
FROM lines
"""


def profile_from_store(con, customer_id: str) -> ShopperProfile:
    """The shopper's profile from their order lines; StoreError for an unknown customer."""
    customer_id = str(customer_id)
    row = con.execute("SELECT * FROM customers WHERE customer_id = ?", [customer_id]).fetchone()
    if row is None:
        raise StoreError(f"No customer {customer_id!r} in the store; `kefu store info` shows what it holds.")
    columns = [d[0] for d in con.description]
    household = {
        c: str(v)
        for c, v in zip(columns, row, strict=True)
        if c not in ("customer_id", "has_demographics") and v is not None
    }
    df = con.execute(PROFILE_SQL, [customer_id]).df()
    profile = ShopperProfile(customer_id=customer_id, lines=len(df), household=household)
    if df.empty:
        return profile
    profile.category_affinity = df["category"].dropna().value_counts(normalize=False).div(len(df)).to_dict()
    profile.department_share = df["department"].dropna().value_counts().div(len(df)).to_dict()
    profile.private_label_share = float((df["brand"] == "Private").mean())
    prices = df["unit_price"].replace([np.inf, -np.inf], np.nan).dropna()
    prices = prices[prices > 0]
    if len(prices):
        profile.price_p25 = round(float(prices.quantile(0.25)), 2)
        profile.price_p75 = round(float(prices.quantile(0.75)), 2)
    as_of = pd.Timestamp(df["as_of"].iloc[0])
    for category, days in df.dropna(subset=["category"]).groupby("category")["day"]:
        unique = pd.to_datetime(pd.Series(sorted(set(days))))
        if len(unique) >= 3:
            profile.repurchase_days[category] = float(unique.diff().dt.days.dropna().median())
            profile.days_since[category] = int((as_of - unique.iloc[-1]).days)
    return profile


def personal_boost(record: Mapping[str, Any], profile: ShopperProfile) -> tuple[float, list[Reason]]:
    """(boost in [0, MAX_BOOST], its "personal" reasons) for one catalogue record."""
    boost, reasons = 0.0, []
    category, department = record.get("category"), record.get("department")
    share = profile.category_affinity.get(category, 0.0) if category else 0.0
    if share > 0:
        boost += 0.15 * min(1.0, share / 0.2)
        if share >= OFTEN_SHARE:
            reasons.append(_personal(f"you often buy {str(category).lower()}"))
    dept_share = profile.department_share.get(department, 0.0) if department else 0.0
    boost += 0.05 * min(1.0, dept_share / 0.4)
    if str(record.get("brand", "")).lower() == "private" and profile.private_label_share >= PRIVATE_OFTEN:
        boost += 0.05
        what = str(category or department or "products").lower()
        reasons.append(_personal(f"you often buy PRIVATE-label {what}"))
    price = record.get("price")
    if (
        price is not None
        and not np.isnan(price)
        and profile.price_p25 is not None
        and profile.price_p25 <= price <= profile.price_p75
    ):
        boost += 0.05
        reasons.append(_personal(f"within your usual price range (${profile.price_p25:.2f}–${profile.price_p75:.2f})"))
    cycle = profile.repurchase_days.get(category) if category else None
    if cycle is not None and profile.days_since.get(category, 0) >= cycle:
        boost += 0.05
        reasons.append(
            _personal(
                f"you usually rebuy {str(category).lower()} every ~{cycle:.0f} days; last time was "
                f"{profile.days_since[category]} days ago"
            )
        )
    return min(boost, MAX_BOOST), reasons


def _personal(text: str) -> Reason:
    return Reason(kind="personal", text=text)
