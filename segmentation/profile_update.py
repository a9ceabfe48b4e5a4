"""Folding one event into one customer's running state: the pure arithmetic behind ``ProfileStore.record``.

Definitions are those of ``segmentation/sql/features.sql`` (counted orders, purchase lines = lines that are not
returns, gross spend = what purchase lines cost) and of ``segmentation/clv.py`` (a calendar day with purchases is one
BG/NBD transaction), so a live update lands where a re-fit on the same data would - up to what one event cannot
tell: other customers' recency, trend_90d and taste (product text) vectors, which ``kefu segment fit`` recomputes.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime

import numpy as np
import pandas as pd

from segmentation import clv
from segmentation.features import column_name


@dataclass(frozen=True)
class BoughtLine:
    """One order line with what the catalogue says about its product (known False: not in the catalogue)."""

    product_id: str
    amount: float
    known: bool
    department: str | None
    category: str | None
    private_label: bool

    @property
    def is_purchase(self) -> bool:
        return self.amount >= 0


@dataclass
class OrderTotals:
    """What one order adds to the running totals."""

    net: float
    gross: float  # purchase lines only
    discount: float  # on purchase lines
    lines: int
    purchase_lines: int
    coupon_lines: int


def add_order(totals: dict, ts: datetime, order: OrderTotals) -> None:
    """Fold one order into the running totals (AGGREGATE_FIELDS of segmentation/profiles.py)."""
    totals["n_orders"] += 1
    totals["net_spend"] += order.net
    totals["n_lines"] += order.lines
    totals["gross_spend"] += order.gross
    totals["discount_total"] += order.discount
    totals["n_purchase_lines"] += order.purchase_lines
    totals["n_coupon_lines"] += order.coupon_lines
    ts = pd.Timestamp(ts).to_pydatetime()
    totals["first_order"] = min(filter(None, [totals["first_order"], ts]))
    totals["last_order"] = max(filter(None, [totals["last_order"], ts]))


def features_from_totals(t: dict, as_of: datetime) -> dict:
    first, last = pd.Timestamp(t["first_order"]), pd.Timestamp(t["last_order"])
    n = t["n_orders"]
    return {
        "recency_days": (as_of.date() - last.date()).days,
        "frequency": n,
        "monetary": round(t["net_spend"], 2),
        "tenure_days": (as_of.date() - first.date()).days,
        "avg_basket_value": t["net_spend"] / n,
        "avg_basket_size": t["n_lines"] / n,
        "interpurchase_days": (last - first).total_seconds() / 86400 / (n - 1) if n > 1 else None,
        "discount_share": t["discount_total"] / (t["gross_spend"] + t["discount_total"])
        if t["gross_spend"] + t["discount_total"]
        else 0.0,
        "coupon_share": t["n_coupon_lines"] / t["n_purchase_lines"] if t["n_purchase_lines"] else 0.0,
    }


def time_features(features: dict, orders_before: int, ts: datetime) -> dict:
    """weekend_share, evening_share and hour_mean as running means over the orders, this one added (trend_90d,
    which needs every order's date, keeps its fit-time value)."""
    this = {
        "weekend_share": float(ts.weekday() >= 5),
        "evening_share": float(ts.hour >= 17),
        "hour_mean": ts.hour + ts.minute / 60,
    }
    n = orders_before
    return {k: (_number(features.get(k)) * n + v) / (n + 1) for k, v in this.items()}


def share_features(
    features: dict, dept_columns: list[str], gross_before: float, gross_after: float, lines: list[BoughtLine]
) -> dict:
    """dept_<name> shares and private_label_share after an order: each spend = old share x old gross spend, plus
    this order's purchase lines, over the new gross spend. An order given without lines dilutes every share (its
    products are unknown, like a product missing from the catalogue in the SQL)."""
    added: Counter[str] = Counter()
    private = 0.0
    for line in lines:
        if line.is_purchase and line.department is not None:
            added[column_name(line.department)] += line.amount
        if line.is_purchase and line.private_label:
            private += line.amount
    out = {}
    for col in dept_columns:
        spend = _number(features.get(col)) * gross_before + added.get(col, 0.0)
        out[col] = spend / gross_after if gross_after > 0 else 0.0
    spend = _number(features.get("private_label_share")) * gross_before + private
    out["private_label_share"] = spend / gross_after if gross_after > 0 else 0.0
    return out


def add_category_spend(spend: dict[tuple[str | None, str | None], float], lines: list[BoughtLine]) -> None:
    for line in lines:
        if line.is_purchase and line.department is not None:
            key = (line.department, line.category)
            spend[key] = spend.get(key, 0.0) + line.amount


def top_lists(spend: dict[tuple[str | None, str | None], float], n: int = 3) -> dict:
    """top_department, top_category (of the top (department, category) pair) and the profile's top_categories
    (categories by spend summed over departments), ties broken by name as in the SQL."""
    departments: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for (department, category), value in spend.items():
        if department is not None:
            departments[department] += value
        if category is not None:
            categories[category] += value
    pairs = [(v, c, d) for (d, c), v in spend.items() if c is not None]
    return {
        "top_department": min(departments.items(), key=lambda kv: (-kv[1], kv[0]))[0] if departments else None,
        "top_category": min(pairs, key=lambda p: (-p[0], p[1], p[2] or ""))[1] if pairs else None,
        "top_categories": [c for c, _ in sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[:n]],
    }


# -- CLV ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CLVState:
    """A customer's BG/NBD + Gamma-Gamma inputs: purchase days (first, last, repeat count) and repeat-day spend."""

    first_day: date
    last_day: date
    frequency: int  # purchase days after the first
    repeat_total: float  # spend on those days (monetary_value = repeat_total / frequency)

    @classmethod
    def from_fit(cls, row: dict) -> CLVState | None:
        if row.get("clv_first_day") is None:
            return None
        frequency = int(row["clv_frequency"])
        return cls(
            first_day=_date(row["clv_first_day"]),
            last_day=_date(row["clv_last_day"]),
            frequency=frequency,
            repeat_total=float(row["clv_monetary_value"]) * frequency,
        )


def clv_after_order(state: CLVState | None, day: date, amount: float) -> CLVState | None:
    """The state after an order of net ``amount`` on ``day``. A new day with a negative total is a return day (not
    a purchase, as in clv.calibration_summary); a return on an already counted purchase day lowers that day's
    spend but does not uncount the day; an order dated before the last purchase day changes nothing here (which
    earlier days already hold purchases is not kept)."""
    if state is None:
        return CLVState(day, day, 0, 0.0) if amount >= 0 else None
    if day == state.last_day and day > state.first_day:
        return replace(state, repeat_total=state.repeat_total + amount)
    if day > state.last_day and amount >= 0:
        return replace(state, last_day=day, frequency=state.frequency + 1, repeat_total=state.repeat_total + amount)
    return state


def clv_scores(state: CLVState, calibration_end: date, params: dict, horizon_days: float) -> dict:
    """p_alive, expected purchases and expected value over the horizon from the fitted parameters."""
    bgnbd = clv.BGNBD(**params["bgnbd"], log_likelihood=math.nan, converged=True)
    gg = clv.GammaGamma(**params["gamma_gamma"], log_likelihood=math.nan, converged=True, customers=0)
    x = state.frequency
    recency, big_t = (state.last_day - state.first_day).days, max((calibration_end - state.first_day).days, 0)
    monetary = state.repeat_total / x if x else 0.0
    purchases = float(clv.expected_purchases(bgnbd, horizon_days, [x], [recency], [big_t])[0])
    spend = float(clv.expected_spend(gg, [x], [monetary])[0])
    return {
        "p_alive": float(clv.p_alive(bgnbd, [x], [recency], [big_t])[0]),
        "clv_expected_purchases": purchases,
        "clv_expected_value": purchases * spend,
    }


def _number(value) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _date(value) -> date:
    if isinstance(value, datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))
