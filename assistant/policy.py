"""Segment-aware policy: rules from ``assistant/policy.toml`` (one readable table) decide coupons, handoff
priority, popular picks and value-first ranking for a customer."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

PRICE_SENSITIVE_PRIVATE_SHARE = 0.4  # buys store brand for ≥ 40 % of lines


@dataclass
class Treatment:
    rules: list[str] = field(default_factory=list)
    offer_coupon: bool = False
    handoff_priority: str = "normal"
    popular_picks: bool = False
    value_first: bool = False
    tone: list[str] = field(default_factory=list)


def load_rules(path: Path | None = None) -> list[dict]:
    text = path.read_text() if path else resources.files("assistant").joinpath("policy.toml").read_text()
    return tomllib.loads(text)["rule"]


def treatment_for(segment: str | None, price_sensitive: bool, rules: list[dict]) -> Treatment:
    t = Treatment()
    for rule in rules:
        when = rule.get("when", {})
        if "segment" in when and segment not in when["segment"]:
            continue
        if "price_sensitive" in when and when["price_sensitive"] != price_sensitive:
            continue
        t.rules.append(rule["name"])
        t.offer_coupon |= rule.get("offer_coupon", False)
        t.popular_picks |= rule.get("popular_picks", False)
        t.value_first |= rule.get("value_first", False)
        if rule.get("handoff_priority") == "high":
            t.handoff_priority = "high"
        if rule.get("tone"):
            t.tone.append(rule["tone"])
    return t


COUPON_SQL = """
SELECT c.coupon_upc, c.campaign_id, c.product_id, d.campaign_type, d.end_date
FROM coupons c JOIN campaign_members m ON m.campaign_id = c.campaign_id AND m.customer_id = ?
JOIN campaigns d ON d.campaign_id = c.campaign_id
WHERE c.product_id IN ({ids})
ORDER BY d.end_date DESC, c.coupon_upc LIMIT 1
"""


def find_coupon(con, customer_id: str, product_ids: list[str]) -> dict | None:
    """A coupon from a campaign that targets this customer and covers one of the shown products."""
    if not product_ids:
        return None
    row = con.execute(COUPON_SQL.format(ids=",".join("?" * len(product_ids))), [customer_id, *product_ids]).fetchone()
    if row is None:
        return None
    return dict(zip(("coupon_upc", "campaign_id", "product_id", "campaign_type", "end_date"), row, strict=True))
