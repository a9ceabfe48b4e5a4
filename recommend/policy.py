"""The shop's display policy for proactive recommendations: sellable and priced, within the shopper's budget, and
nothing from an excluded department or category (``policy.toml``: non-merchandise lines, tobacco, alcohol)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from kefu.errors import ConfigError

SELLABLE_SQL = "SELECT product_id, department, category, price FROM products WHERE in_stock AND price > 0"


@dataclass(frozen=True)
class DisplayPolicy:
    departments: dict[str, str]  # upper-cased department -> the group that excludes it
    categories: dict[str, str]

    @classmethod
    def load(cls, path: Path | None = None) -> DisplayPolicy:
        """The policy file (default: the packaged ``recommend/policy.toml``)."""
        try:
            text = path.read_text() if path else resources.files("recommend").joinpath("policy.toml").read_text()
            groups = tomllib.loads(text)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Cannot read the display policy {path or 'recommend/policy.toml'}: {exc}") from exc
        departments, categories = {}, {}
        for group, lists in groups.items():
            if not isinstance(lists, dict) or set(lists) - {"departments", "categories"}:
                raise ConfigError(f"Display policy group [{group}] may only hold `departments` and `categories` lists.")
            departments |= {d.upper(): group for d in lists.get("departments", [])}
            categories |= {c.upper(): group for c in lists.get("categories", [])}
        return cls(departments, categories)

    def excluded_by(self, department: str | None, category: str | None) -> str | None:
        """The group that keeps this product out of recommendations, or None when it may be shown."""
        return self.departments.get((department or "").upper()) or self.categories.get((category or "").upper())

    def shown(self, con: duckdb.DuckDBPyConnection) -> dict[str, float]:
        """product_id -> price of every product the policy lets a recommendation show (sellable and priced)."""
        rows = con.execute(SELLABLE_SQL).fetchall()
        return {pid: float(price) for pid, dept, cat, price in rows if self.excluded_by(dept, cat) is None}
