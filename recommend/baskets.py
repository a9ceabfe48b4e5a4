"""Customers' baskets, as the recommender reads them: from the NBR Reality Check's JSON layout or from the store.

``Baskets`` is one flat table of purchase lines (customer, basket, item, time) with the item vocabulary; every
signal in ``recommend/signals.py`` is computed from it. Times are in the layout's own unit: the Reality Check's
files have no dates, so a basket's time is its position in the customer's history; the store's are days.
``holdout`` splits each customer's latest purchases off as a target, which is what the blend learns from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from kefu.errors import StoreError

Targets = dict[str, set[str]]  # customer -> the item ids of their next basket (or window)


class BasketFileError(StoreError):
    """A history, target or users file is missing or not in the expected layout."""


@dataclass
class Baskets:
    """Purchase lines, one row per (basket, item): columns user (int), basket (int, increasing with time within
    a customer), item (int), time (float: days or basket position). ``users`` and ``items`` map the ints back to
    the layout's ids. ``unit`` is "basket" or "day"."""

    lines: pd.DataFrame
    users: list[str]
    items: list[str]
    unit: str
    now: float  # the time a prediction is for: one past the last basket (positions) or the as-of day
    now_offset: float = 0.0  # how far ``holdout`` moved "now" back from where the data was read (time unit)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.users)}

    def item_index(self) -> dict[str, int]:
        return {it: i for i, it in enumerate(self.items)}


def _read_json(path: Path, what: str) -> object:
    if not path.is_file():
        raise BasketFileError(f"No {what} file at {path}.")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BasketFileError(f"{path} is not valid JSON ({exc}); the {what} file must be a JSON object.") from None


def read_layout(path: Path, what: str = "history") -> dict[str, list[list[str]]]:
    """A Reality Check file ``{"user": [[-1], basket, ..., [-1]]}`` as customer -> baskets of item ids (text),
    the ``[-1]`` markers dropped. Anything else is refused with the customer and basket that are wrong."""
    data = _read_json(path, what)
    if not isinstance(data, dict):
        raise BasketFileError(f'{path}: expected a JSON object {{"customer": [[-1], [item, ...], ..., [-1]]}}.')
    out: dict[str, list[list[str]]] = {}
    for user, baskets in data.items():
        if not isinstance(baskets, list) or not all(isinstance(b, list) for b in baskets):
            raise BasketFileError(f"{path}: customer {user!r} must map to a list of baskets (lists of item ids).")
        kept = []
        for n, basket in enumerate(baskets):
            if basket == [-1]:
                continue
            if not basket or not {type(i) for i in basket} <= {int, str}:  # (bool is not int here)
                raise BasketFileError(f"{path}: customer {user!r}, basket {n}: expected a non-empty list of item ids.")
            kept.append([str(i) for i in basket])
        out[str(user)] = kept
    return out


def read_users(path: Path) -> list[str]:
    """A users file: a JSON list of customer ids, or an object whose keys are the ids (e.g. a target file)."""
    data = _read_json(path, "users")
    if isinstance(data, dict):
        return [str(u) for u in data]
    if isinstance(data, list) and all(isinstance(u, int | str) and not isinstance(u, bool) for u in data):
        return [str(u) for u in data]
    raise BasketFileError(f"{path}: expected a JSON list of customer ids (or an object keyed by customer id).")


def from_layout(history: dict[str, list[list[str]]]) -> Baskets:
    """Baskets from the Reality Check layout: time = the basket's position in the customer's history."""
    users = list(history)
    sizes = [len(b) for baskets in history.values() for b in baskets]
    counts = [len(baskets) for baskets in history.values()]
    basket = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    user = np.repeat(np.repeat(np.arange(len(users), dtype=np.int32), counts), sizes)
    position = np.concatenate([np.arange(n) - n for n in counts]) if counts else np.zeros(0)  # last basket: -1
    flat = [item for baskets in history.values() for b in baskets for item in b]
    codes, vocab = pd.factorize(pd.Series(flat, dtype=object))
    lines = pd.DataFrame({"user": user, "basket": basket, "item": codes.astype(np.int32),
                          "time": np.repeat(position, sizes).astype(np.float64)})  # fmt: skip
    lines = lines.drop_duplicates(["basket", "item"]).reset_index(drop=True)  # an item counts once per basket
    return Baskets(lines, users, [str(v) for v in vocab], "basket", 0.0)


STORE_LINES_SQL = """
SELECT o.customer_id, o.order_id, i.product_id, min(o.ordered_at) AS ordered_at
FROM orders o JOIN order_items i USING (order_id)
WHERE o.ordered_at < $as_of AND o.status <> 'cancelled' AND NOT i.is_return AND i.quantity > 0
GROUP BY ALL
"""


def from_store(con: duckdb.DuckDBPyConnection, as_of: datetime) -> Baskets:
    """The store's purchase lines strictly before ``as_of`` (orders not cancelled, no returns); time in days
    relative to ``as_of`` (negative)."""
    df = con.execute(STORE_LINES_SQL, {"as_of": as_of}).df()
    if df.empty:
        raise StoreError(f"The store has no orders before {as_of:%Y-%m-%d}; pick a later --as-of.")
    users = sorted(df["customer_id"].unique())
    items = sorted(df["product_id"].unique())
    df = df.sort_values(["customer_id", "ordered_at", "order_id"])
    days = (df["ordered_at"] - pd.Timestamp(as_of)) / pd.Timedelta(days=1)
    lines = pd.DataFrame(
        {
            "user": pd.Categorical(df["customer_id"], categories=users).codes.astype(np.int32),
            "basket": pd.factorize(df["order_id"])[0].astype(np.int64),
            "item": pd.Categorical(df["product_id"], categories=items).codes.astype(np.int32),
            "time": days.to_numpy(dtype=np.float64),
        }
    )
    return Baskets(lines.reset_index(drop=True), [str(u) for u in users], [str(i) for i in items], "day", 0.0)


def store_targets(con: duckdb.DuckDBPyConnection, start: datetime, days: int) -> Targets:
    """What each customer bought in ``[start, start + days)``: the store layout's targets."""
    df = con.execute(STORE_LINES_SQL.replace("o.ordered_at < $as_of", "o.ordered_at >= $start AND o.ordered_at < $end"),
                     {"start": start, "end": start + timedelta(days=days)}).df()  # fmt: skip
    out: Targets = {}
    for user, item in zip(df["customer_id"], df["product_id"], strict=True):
        out.setdefault(str(user), set()).add(str(item))
    return out


def holdout(baskets: Baskets, window: float | None = None) -> tuple[Baskets, Targets]:
    """Each customer's latest purchases as a target, and the baskets before them as history.

    Positions (``window`` None): the last basket of every customer with at least two. Days: the last ``window``
    days before ``now`` for everyone (customers with nothing before the window are dropped from the history)."""
    lines = baskets.lines
    if window is None:
        last = lines.groupby("user")["basket"].transform("max")
        first = lines.groupby("user")["basket"].transform("min")
        is_target = (lines["basket"] == last) & (last != first)
        shift = 1.0
    else:
        is_target = lines["time"] >= baskets.now - window
        shift = window
    target_lines = lines[is_target]
    kept = lines[~is_target].copy()
    kept["time"] = kept["time"] + shift  # the held-out span starts at the new "now" (0)
    targets: Targets = {}
    for u, i in zip(target_lines["user"].to_numpy(), target_lines["item"].to_numpy(), strict=True):
        targets.setdefault(baskets.users[u], set()).add(baskets.items[i])
    return (Baskets(kept.reset_index(drop=True), baskets.users, baskets.items, baskets.unit, baskets.now,
                    baskets.now_offset - shift), targets)  # fmt: skip
