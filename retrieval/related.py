"""Recommendations without a query: embedding neighbours of a product, and products bought in the same baskets.

Both take the same hard filters as search and are meant to be exposed as assistant tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from kefu.errors import StoreError
from retrieval.filters import Filters
from retrieval.hybrid import ProductSearch, SearchResult
from retrieval.reasons import Reason


class BoughtTogether(BaseModel):
    product_id: str
    title: str | None
    support: int  # baskets holding both products
    confidence: float  # support / baskets holding the given product
    price: float | None


def similar_items(
    search: ProductSearch, product_id: str, k: int = 10, filters: Filters | Mapping[str, Any] | None = None
) -> list[SearchResult]:
    """The k products whose text embeddings are nearest to ``product_id``'s (itself excluded), scored exactly."""
    filters = Filters.parse(filters)
    if product_id not in search.catalog.row_of:
        raise StoreError(
            f"No product {product_id!r} in the search index; is the id right (and `kefu index` run since it was added)?"
        )
    filters = filters.model_copy(update={"exclude_ids": (*filters.exclude_ids, product_id)})
    vector = search.vectors[search.text_row[search.catalog.row_of[product_id]]]
    results = []
    for rank, (row, similarity) in enumerate(search.dense_candidates(vector, k, filters.mask(search.catalog)), 1):
        result = search.make_result(row, similarity, [], None, rank, None)
        result.reasons = [Reason(kind="similar", text=f"similar to {product_id}", rank=rank, score=similarity)]
        results.append(result)
    return results[:k]


BOUGHT_TOGETHER_SQL = """
WITH mine AS (
    SELECT DISTINCT order_id FROM order_items WHERE product_id = ? AND NOT is_return
), pairs AS (
    SELECT i.product_id, count(DISTINCT i.order_id) AS support
    FROM order_items i JOIN mine USING (order_id)
    WHERE i.product_id <> ? AND NOT i.is_return
    GROUP BY i.product_id
)
SELECT pairs.product_id, p.title, pairs.support, pairs.support / (SELECT count(*) FROM mine) AS confidence,
       p.price
FROM pairs LEFT JOIN products p USING (product_id)
WHERE pairs.support >= ?
ORDER BY pairs.support DESC, confidence DESC, pairs.product_id
"""


def bought_together(
    con, product_id: str, k: int = 10, min_support: int = 2, filters: Filters | Mapping[str, Any] | None = None
) -> list[BoughtTogether]:
    """Products found in at least ``min_support`` of the baskets that hold ``product_id``, most frequent first.
    Filters apply to the partner products (those missing from the catalogue fail any filter)."""
    filters = Filters.parse(filters)
    if min_support < 1:
        raise StoreError(f"min_support must be at least 1, got {min_support}.")
    if con.execute("SELECT count(*) FROM products WHERE product_id = ?", [product_id]).fetchone()[0] == 0:
        raise StoreError(f"No product {product_id!r} in the store.")
    rows = con.execute(BOUGHT_TOGETHER_SQL, [product_id, product_id, min_support]).fetchall()
    out = []
    if not filters.is_empty() and rows:
        ids = [r[0] for r in rows]
        placeholders = ",".join("?" * len(ids))
        cols = "product_id, price, department, category, brand, in_stock"
        found = {
            r[0]: dict(zip(cols.split(", "), r, strict=True))
            for r in con.execute(f"SELECT {cols} FROM products WHERE product_id IN ({placeholders})", ids).fetchall()
        }
        rows = [r for r in rows if r[0] in found and filters.matches(found[r[0]])]
    for pid, title, support, confidence, price in rows[:k]:
        out.append(
            BoughtTogether(
                product_id=pid, title=title, support=int(support), confidence=round(float(confidence), 4), price=price
            )
        )
    return out
