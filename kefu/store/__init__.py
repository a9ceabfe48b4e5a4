"""The shop store: one DuckDB file in the data dir holding products, customers, orders, order items, events,
campaigns and coupons. The schema (``kefu/store/schema.sql``) is the contract any shop's data maps onto.

Stores are written whole into a temporary file and moved into place only when complete, so a failed build or
import leaves the previous store untouched.
"""

from __future__ import annotations

import contextlib
import os
import threading
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


def open_store(path: Path, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A connection to an existing store (the caller closes it); a clear error when there is none."""
    if not path.is_file():
        raise StoreError(
            f"No store at {path}. Build the demo store with `kefu store build` or import yours "
            "with `kefu store import`."
        )
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise StoreError(f"Cannot open the store at {path} ({exc}). Rebuild it with `kefu store build`.") from exc


@contextlib.contextmanager
def connect(path: Path, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open an existing store for a block; a clear error when there is none."""
    con = open_store(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


class StoreReader:
    """Read-only access to a store for a long-running process: one DuckDB connection, opened on first use, and
    one cursor of it per thread (a DuckDB connection must not run queries from two threads at once; cursors of one
    connection may, each from its own thread). ``opened`` counts the connections and cursors opened.

    The connection stays open for the reader's life, so a store file replaced under it (``kefu store build`` moves
    a new one into place) is seen after a restart, as the search index built from it is.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened = 0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._local = threading.local()  # .cursor: this thread's cursor of self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (a connection of its own to the same database); StoreError when there is no store."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            with self._lock:
                if self._con is None:
                    self._con = open_store(self.path)
                    self.opened += 1
                cursor = self._con.cursor()
                self.opened += 1
            self._local.cursor = cursor
        return cursor

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
            self._con = None
            self._local = threading.local()


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
