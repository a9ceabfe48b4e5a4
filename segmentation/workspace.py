"""Where fitted segmentation lives, and a writable DuckDB connection that sees the read-only store.

Everything ``kefu segment fit`` produces goes into the data dir, never into the store: tables (features, profiles,
propensity scores) in ``segments.duckdb`` and model files (cluster arrays, personas, propensity model) under
``segments/``. The store is attached read-only and its tables are exposed as temporary views under their own
names, so SQL written against the store schema (e.g. ``segmentation/sql/features.sql``) runs unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from kefu.errors import StoreError
from kefu.settings import Settings
from kefu.store import TABLES

FIT_FORMAT = 2  # of segments.duckdb + fit.json; bump when they change shape (older fits are refused: "re-fit")


def segments_dir(settings: Settings) -> Path:
    return settings.data_dir / "segments"


def segments_db(settings: Settings) -> Path:
    return settings.data_dir / "segments.duckdb"


@contextlib.contextmanager
def fitted_tables(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to what ``kefu segment fit`` wrote; a StoreError naming that command when the fit is
    missing or a table in it is."""
    db_path = segments_db(settings)
    if not db_path.is_file():
        raise StoreError(f"No fitted segmentation in {settings.data_dir}; run `kefu segment fit` first.")
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        yield con
    except duckdb.Error as exc:
        raise StoreError(
            f"The fitted segmentation in {db_path} is incomplete ({str(exc).splitlines()[0]}); run `kefu segment fit`."
        ) from exc
    finally:
        con.close()


@contextlib.contextmanager
def workspace(store_path: Path, db_path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``db_path`` (default: in memory) with the store's tables visible as views."""
    if not store_path.is_file():
        raise StoreError(
            f"No store at {store_path}. Build the demo store with `kefu store build` or import "
            "yours with `kefu store import`."
        )
    if db_path is not None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path) if db_path else ":memory:")
    try:
        escaped = str(store_path).replace("'", "''")
        con.execute(f"ATTACH '{escaped}' AS store (READ_ONLY)")
        for table in TABLES:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM store.main.{table}")
    except duckdb.Error as exc:
        con.close()
        raise StoreError(f"Cannot open the store at {store_path} ({exc}). Rebuild it with `kefu store build`.") from exc
    try:
        yield con
    finally:
        con.close()
