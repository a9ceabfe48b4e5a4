"""Why an item is recommended, as data: a kind and that kind's own fields (``every`` and its ``unit`` for a
repurchase cycle, ``times`` for a repeat, ``with_item`` for a co-purchase, ``segment`` for segment popularity).
The sentence a shopper reads comes from ``reasons.toml`` (package data a shop can edit)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel

RecReasonKind = Literal["cycle", "repeat", "bought_with", "segment", "similar_shoppers", "popular"]


@cache
def templates() -> dict[str, str]:
    return tomllib.loads(resources.files("recommend").joinpath("reasons.toml").read_text())


def every_text(every: float, unit: str) -> str:
    """A repurchase gap as people say it: "week", "2 weeks", "3 days", "month", "4 visits"."""
    if unit == "basket":
        n = max(1, round(every))
        return "visit" if n == 1 else f"{n} visits"
    days = max(1, round(every))
    if days >= 45:
        months = round(days / 30)
        return "month" if months == 1 else f"{months} months"
    if days >= 10:
        weeks = round(days / 7)
        return "week" if weeks == 1 else f"{weeks} weeks"
    return "day" if days == 1 else f"{days} days"


class RecReason(BaseModel):
    kind: RecReasonKind
    every: float | None = None  # cycle: the customer's own mean gap between purchases of the item
    unit: str | None = None  # cycle: "day" or "basket"
    times: int | None = None  # repeat: baskets with the item
    with_item: str | None = None  # bought_with: the customer's item it is most often bought with
    segment: str | None = None  # segment: the segment's name

    @property
    def every_days(self) -> int | None:
        return round(self.every) if self.every is not None and self.unit == "day" else None

    def text(self, titles: Mapping[str, str] | None = None) -> str:
        """The shopper's sentence; ``titles`` names the co-purchased item (its id otherwise)."""
        fields = {
            "every": every_text(self.every or 1, self.unit or "day"),
            "times": "once" if self.times == 1 else f"{self.times} times",
            "with_title": (titles or {}).get(self.with_item or "", self.with_item or ""),
            "segment": self.segment or "",
        }
        return templates()[self.kind].format(**fields)
