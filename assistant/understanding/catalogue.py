"""Catalogue words: the categories and product types the shop sells, read from the store, so "cheese" is a
product search even when the model calls it chitchat."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z]{4,}")


GENERIC = frozenset(
    [
        "products",
        "product",
        "misc",
        "other",
        "under",
        "kids",
        "food",
        "foods",
        "items",
        "item",
        "with",
        "without",
        "only",
        "free",
        "size",
        "family",
        "pack",
        "plus",
        "all",
        "non",
        "mix",
        "mixes",
        "dept",
        "department",
        "regular",
        "total",
        "each",
        "assorted",
        "single",
        "multi",
        "value",
    ]
)
VOCABULARY_SQL = """
SELECT word FROM (
    SELECT unnest(regexp_extract_all(lower(concat_ws(' ', category, product_type)), '[a-z]{4,}')) AS word
    FROM products WHERE price IS NOT NULL
) GROUP BY word HAVING count(*) >= ?
"""


def catalogue_vocabulary(con, min_products: int = 20) -> frozenset[str]:
    """Words naming categories and product types of at least ``min_products`` priced products (generic words out)."""
    return frozenset(r[0] for r in con.execute(VOCABULARY_SQL, [min_products]).fetchall()) - GENERIC


def catalogue_terms(text: str, vocabulary: frozenset[str]) -> list[str]:
    """Words of ``text`` that name a product category or type in the shop's catalogue (plural or singular)."""
    return [w for w in _WORD.findall(text.lower()) if {w, w + "s", w.removesuffix("s")} & vocabulary]
