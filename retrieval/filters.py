"""Hard filters: constraints a result must satisfy, applied on both the dense and the lexical side and checked
again on every result, so no ranking step can let a violating product through.

Text fields (department, category, brand) compare casefolded and exactly. A price bound excludes products
without a known price.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kefu.errors import FilterError
from retrieval.catalog import Catalog, key


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)
    departments: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    exclude_brands: tuple[str, ...] = ()
    exclude_ids: tuple[str, ...] = ()
    in_stock: bool | None = Field(None, description="True: only products in stock.")

    @field_validator("departments", "categories", "brands", "exclude_brands", "exclude_ids", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _price_range(self) -> Filters:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"min_price {self.min_price} is above max_price {self.max_price}")
        return self

    @classmethod
    def parse(cls, value: Filters | Mapping[str, Any] | None) -> Filters:
        """Filters from a dict (e.g. an LLM tool call); errors name the offending field."""
        if value is None:
            return cls()
        if isinstance(value, Filters):
            return value
        try:
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "min_price/max_price"
                message = "unknown filter field" if err["type"] == "extra_forbidden" else err["msg"]
                problems.append(f"{field}: {message}")
            allowed = ", ".join(cls.model_fields)
            raise FilterError(f"Invalid search filters ({'; '.join(problems)}). Allowed fields: {allowed}.") from None

    def is_empty(self) -> bool:
        return self == Filters()

    # The three places filters apply: a mask over the catalogue, Chroma's where clause, one record.
    def mask(self, catalog: Catalog) -> np.ndarray:
        ok = np.ones(len(catalog), dtype=bool)
        if self.min_price is not None:
            ok &= catalog.price >= self.min_price  # NaN compares False
        if self.max_price is not None:
            ok &= catalog.price <= self.max_price
        for values, column in ((self.departments, "department"), (self.categories, "category"), (self.brands, "brand")):
            if values:
                ok &= catalog.in_keys(column, values)
        if self.exclude_brands:
            ok &= ~catalog.in_keys("brand", self.exclude_brands)
        if self.exclude_ids:
            ok[catalog.rows(self.exclude_ids)] = False
        if self.in_stock:
            ok &= catalog.in_stock
        return ok

    def chroma_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.min_price is not None:
            clauses.append({"price": {"$gte": float(self.min_price)}})
        if self.max_price is not None:
            clauses.append({"price": {"$lte": float(self.max_price)}})
        for values, column in ((self.departments, "department"), (self.categories, "category"), (self.brands, "brand")):
            if values:
                clauses.append({column: {"$in": sorted({key(v) for v in values})}})
        if self.exclude_brands:
            clauses.append({"brand": {"$nin": sorted({key(v) for v in self.exclude_brands})}})
        if self.exclude_ids:
            clauses.append({"pid": {"$nin": sorted(set(self.exclude_ids))}})
        if self.in_stock:
            clauses.append({"in_stock": {"$eq": True}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def matches(self, record: Mapping[str, Any]) -> bool:
        """The reference check for one catalogue record (used to verify results)."""
        price = record.get("price")
        known = price is not None and not np.isnan(price)
        if self.min_price is not None and not (known and price >= self.min_price):
            return False
        if self.max_price is not None and not (known and price <= self.max_price):
            return False
        for values, column in ((self.departments, "department"), (self.categories, "category"), (self.brands, "brand")):
            if values and key(record.get(column)) not in {key(v) for v in values}:
                return False
        if self.exclude_brands and key(record.get("brand")) in {key(v) for v in self.exclude_brands}:
            return False
        if str(record.get("product_id")) in set(self.exclude_ids):
            return False
        return not (self.in_stock and not record.get("in_stock", True))
