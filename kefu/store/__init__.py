"""The shop store: one DuckDB file in the data dir holding products, customers, orders, order items, events,
campaigns and coupons. The schema (``kefu/store/schema.sql``) is the contract any shop's data maps onto.

Stores are written whole into a temporary file and moved into place only when complete, so a failed build or
import leaves the previous store untouched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb

from kefu.errors import StoreError

TABLES = (
    "products", "customers", "orders", "order_items", "events",
    "campaigns", "campaign_members", "coupons", "coupon_redemptions",
)  # fmt: skip


def schema_sql() -> str:
    return resources.files("kefu.store").joinpath("schema.sql").read_text()


def write_store(path: Path, fill: Callable[[duckdb.DuckDBPyConnection], dict[str, str]]) -> None:
    """Create a fresh store at ``path`` atomically. ``fill`` loads the tables and returns metadata to record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    tmp.unlink(missing_ok=True)
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute(schema_sql())
            meta = fill(con)
            meta = {"built_at": datetime.now(UTC).isoformat(timespec="seconds"), **meta}
            con.executemany("INSERT INTO store_meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)


@contextlib.contextmanager
def connect(path: Path, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open an existing store; a clear error when there is none."""
    if not path.is_file():
        raise StoreError(
            f"No store at {path}. Build the demo store with `kefu store build` or import yours "
            "with `kefu store import`."
        )
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise StoreError(f"Cannot open the store at {path} ({exc}). Rebuild it with `kefu store build`.") from exc
    try:
        yield con
    finally:
        con.close()


def info(path: Path) -> dict:
    """Row counts per table, the store's metadata, and counts of notable rows."""
    with connect(path) as con:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        meta = dict(con.execute("SELECT key, value FROM store_meta ORDER BY key").fetchall())
        notes = {
            "order_items_returns": con.execute("SELECT count(*) FROM order_items WHERE is_return").fetchone()[0],
            "order_items_unknown_product": con.execute(
                "SELECT count(*) FROM order_items i ANTI JOIN products p USING (product_id)"
            ).fetchone()[0],
            "products_without_price": con.execute("SELECT count(*) FROM products WHERE price IS NULL").fetchone()[0],
            "products_offered": con.execute(  # what shoppers can be shown: in stock and priced
                "SELECT count(*) FROM products WHERE in_stock AND price IS NOT NULL"
            ).fetchone()[0],
        }
    return {"path": str(path), "tables": counts, "notes": notes, "meta": meta}
