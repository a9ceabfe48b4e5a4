"""Catalogue words: the categories and product types the shop sells, read from the store, so "cheese" is a
product search even when the model calls it chitchat."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def is_catalogue_word(word: str, vocabulary: frozenset[str]) -> bool:
    """The word names a product category or type in the shop's catalogue (plural or singular)."""
    return bool({word, word + "s", word.removesuffix("s")} & vocabulary)


def catalogue_terms(text: str, vocabulary: frozenset[str]) -> list[str]:
    """Words of ``text`` (four letters or more) that name a product category or type in the shop's catalogue."""
    return [w for w in _WORD.findall(text.lower()) if is_catalogue_word(w, vocabulary)]


KNOWN_SQL = """
SELECT word FROM (
    SELECT unnest(regexp_extract_all(lower(concat_ws(' ', title, category, product_type)), '[a-z]{3,}')) AS word
    FROM products WHERE price IS NOT NULL
) GROUP BY word HAVING count(*) >= ?
"""
TYPES_SQL = """
SELECT DISTINCT lower(replace(name, '&', ' and ')) FROM (
    SELECT product_type AS name FROM products WHERE price IS NOT NULL
    UNION SELECT category FROM products WHERE price IS NOT NULL
) WHERE name IS NOT NULL
"""


@dataclass(frozen=True)
class Lexicon:
    """The catalogue's words, for reading shopper turns."""

    vocabulary: frozenset[str] = frozenset()  # words naming categories and product types (generic words out)
    known: frozenset[str] = frozenset()  # every word of titles, categories and types of priced products
    compounds: frozenset[str] = frozenset()  # names holding "and" ("macaroni and cheese"), kept whole in lists
    types: tuple[str, ...] = ()  # every category and product type name, lower case


def catalogue_lexicon(con, min_products: int = 20, min_known: int = 2) -> Lexicon:
    types = tuple(sorted(r[0] for r in con.execute(TYPES_SQL).fetchall()))
    compounds = set()
    for name in types:
        for part in re.split(r"[/:,()-]", name):
            part = " ".join(part.split())
            if " and " in part and len(part.split()) <= 5:
                compounds.add(part)
    return Lexicon(
        vocabulary=catalogue_vocabulary(con, min_products),
        known=frozenset(r[0] for r in con.execute(KNOWN_SQL, [min_known]).fetchall()),
        compounds=frozenset(compounds),
        types=types,
    )
