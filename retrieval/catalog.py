"""The catalogue as the indexes see it: one row per product with the text that is embedded and BM25-indexed,
a content hash of that text, and the metadata hard filters use.

A catalogue is a pandas DataFrame with ``COLUMNS``; ``Catalog`` wraps one with the lookup arrays search needs
(casefolded keys for department, category and brand; prices with NaN where unknown; row of each product id).
Sources: the shop store (``catalog_from_store``) or any list of records (BEIR corpora, benchmarks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from kefu.errors import StoreError

COLUMNS = ("product_id", "title", "text", "text_hash", "price", "department", "category", "brand",
           "in_stock", "rating", "popularity")  # fmt: skip
FILTER_KEYS = ("department", "category", "brand")  # text metadata compared casefolded


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def key(value: Any) -> str:
    """Casefolded comparison key for department/category/brand ('' when missing)."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip().casefold()


STORE_SQL = """
SELECT p.product_id, p.title, p.description, p.department, p.category, p.product_type, p.brand,
       p.price, p.in_stock, p.rating, coalesce(s.lines, 0) AS popularity
FROM products p
LEFT JOIN (SELECT product_id, count(*) AS lines FROM order_items WHERE NOT is_return GROUP BY product_id) s
       USING (product_id)
ORDER BY p.product_id
"""


def product_text(title: str, description: str | None, department: str | None) -> str:
    """What is embedded and indexed: the title (demo: type, category, size, store-brand mark), the department
    and the description when the shop has one."""
    parts = [title.strip()]
    if department:
        parts.append(str(department).strip())
    if description:
        parts.append(str(description).strip())
    return ". ".join(p for p in parts if p)


def catalog_from_store(con) -> pd.DataFrame:
    """The store's products, with popularity = number of order lines (returns excluded)."""
    df = con.execute(STORE_SQL).df()
    if df.empty:
        raise StoreError("The store has no products; import a catalogue with `kefu store import` first.")
    df["text"] = [product_text(t, d, dep) for t, d, dep in zip(df.title, df.description, df.department, strict=True)]
    return finish(df)


def catalog_from_records(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Records with at least product_id and text (title optional); other COLUMNS optional."""
    df = pd.DataFrame.from_records(list(records))
    if df.empty:
        raise StoreError("The catalogue is empty: nothing to index.")
    missing = {"product_id", "text"} - set(df.columns)
    if missing:
        raise StoreError(f"Catalogue records lack {', '.join(sorted(missing))}.")
    if "title" not in df.columns:
        df["title"] = df["text"]
    return finish(df)


def finish(df: pd.DataFrame) -> pd.DataFrame:
    """Fill optional columns, check ids, add hashes; returns exactly COLUMNS."""
    defaults = {
        "price": np.nan,
        "department": None,
        "category": None,
        "brand": None,
        "in_stock": True,
        "rating": np.nan,
        "popularity": 0,
    }
    for column, default in defaults.items():
        if column not in df.columns:
            df[column] = default
    df["product_id"] = df["product_id"].astype(str)
    if (df["product_id"].str.strip() == "").any():
        raise StoreError("Some products have an empty product_id.")
    dupes = df["product_id"][df["product_id"].duplicated()]
    if len(dupes):
        raise StoreError(f"Duplicate product ids in the catalogue, e.g. {dupes.iloc[0]!r}.")
    df["text"] = df["text"].fillna("").astype(str)
    df["title"] = df["title"].fillna("").astype(str)
    df["price"] = pd.to_numeric(df["price"], errors="coerce").astype(float)
    df["rating"] = pd.to_numeric(df["rating"], errors="coerce").astype(float)
    df["in_stock"] = df["in_stock"].fillna(True).astype(bool)
    df["popularity"] = pd.to_numeric(df["popularity"], errors="coerce").fillna(0).astype(np.int64)
    for column in FILTER_KEYS:
        df[column] = df[column].astype(object).where(df[column].notna(), None)
    df["text_hash"] = [text_hash(t) for t in df["text"]]
    return df[list(COLUMNS)].reset_index(drop=True)


def chroma_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata stored with each vector for Chroma's ``where`` filters. Unknown price/rating are left out, so a
    price filter never matches a product without a price."""
    meta: dict[str, Any] = {"pid": str(row["product_id"]), "in_stock": bool(row["in_stock"])}
    for column in FILTER_KEYS:
        meta[column] = key(row[column])
    for column in ("price", "rating"):
        value = row[column]
        if value is not None and not np.isnan(value):
            meta[column] = float(value)
    return meta


class Catalog:
    """An indexed catalogue in memory: the table plus arrays for fast filtering (row order = BM25 doc order)."""

    def __init__(self, df: pd.DataFrame) -> None:
        df = df.copy()
        for column in FILTER_KEYS:  # parquet reads missing text back as NaN
            df[column] = df[column].astype(object).where(df[column].notna(), None)
        self.df = df
        self.ids = df["product_id"].to_numpy(dtype=object)
        self.row_of = {pid: i for i, pid in enumerate(self.ids)}
        self.price = df["price"].to_numpy(dtype=float)
        self.in_stock = df["in_stock"].to_numpy(dtype=bool)
        self.popularity = df["popularity"].to_numpy(dtype=np.int64)
        self.keys = {column: np.array([key(v) for v in df[column]], dtype=object) for column in FILTER_KEYS}
        # integer codes of the keys, so filters compare ints: column -> (codes per row, key -> code)
        self.codes: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        for column, keys in self.keys.items():
            uniques, codes = np.unique(keys.astype(str), return_inverse=True)
            self.codes[column] = (codes.astype(np.int32), {k: i for i, k in enumerate(uniques)})
        self._records = df.to_dict("records")

    def __len__(self) -> int:
        return len(self.ids)

    def record(self, row: int) -> dict[str, Any]:
        return self._records[row]

    def in_keys(self, column: str, values) -> np.ndarray:
        """Rows whose casefolded ``column`` is one of ``values``."""
        codes, code_of = self.codes[column]
        wanted = [code_of[k] for k in {key(v) for v in values} if k in code_of]
        return np.isin(codes, wanted) if wanted else np.zeros(len(codes), dtype=bool)

    def rows(self, product_ids: Iterable[str]) -> list[int]:
        return [self.row_of[pid] for pid in product_ids if pid in self.row_of]
