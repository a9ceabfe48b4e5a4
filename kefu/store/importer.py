"""Import a shop's own data (CSV or Parquet files) into a new store, with a column mapping.

A mapping names, per store table, the source file and which source column fills which store column
(``assistant/sql/store_schema.sql`` lists them); unmapped columns whose names already match are taken as is.
Checks, in order, each failing with the file, row and column it concerns:
missing file or empty file; a mapped column absent from the file; a required column not mapped; a value that
cannot be read as the column's type (numbers, dates, booleans); an empty required value; a duplicate id
(products, customers, orders); an order item or event whose order is unknown.
Documented, counted handling (reported in the summary, nothing dropped):
- a negative quantity is a return: the line is kept with ``is_return = true``;
- a customer referenced by orders or events but absent from the customers file is added with no demographics;
- an order item naming a product absent from the products file is kept (``kefu store info`` counts them).
The new store replaces the old one only when everything succeeded.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from kefu.errors import StoreError
from kefu.store import write_store

IMPORTABLE = ("products", "customers", "orders", "order_items", "events")
REQUIRED = {
    "products": ("product_id", "title"),
    "customers": ("customer_id",),
    "orders": ("order_id", "customer_id", "ordered_at"),
    "order_items": ("order_id", "product_id", "quantity", "amount"),
    "events": ("customer_id", "ts", "type"),
}
UNIQUE = {"products": "product_id", "customers": "customer_id", "orders": "order_id"}
DEFAULTS = {  # SQL used when an optional column is not mapped
    ("products", "in_stock"): "TRUE",
    ("customers", "has_demographics"): "FALSE",
    ("orders", "status"): "'completed'",
    ("order_items", "retail_disc"): "0",
    ("order_items", "coupon_disc"): "0",
    ("order_items", "coupon_match_disc"): "0",
}
TYPE_WORDS = {
    "DOUBLE": "a number",
    "INTEGER": "a whole number",
    "TIMESTAMP": "a date/time",
    "DATE": "a date",
    "BOOLEAN": "true/false",
}


@dataclass
class TableSource:
    file: Path
    columns: dict[str, str] = field(default_factory=dict)  # store column -> source column


def load_mapping(path: Path) -> dict[str, TableSource]:
    """Read a TOML mapping: ``[products] file = "x.csv"`` and ``[products.columns] product_id = "sku"``."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise StoreError(f"Cannot read the mapping {path}: {exc}") from exc
    unknown = sorted(set(raw) - set(IMPORTABLE))
    if unknown:
        raise StoreError(f"{path}: unknown table(s) {unknown}; importable tables are {list(IMPORTABLE)}.")
    sources = {}
    for table, spec in raw.items():
        if not isinstance(spec, dict) or "file" not in spec:
            raise StoreError(f'{path}: [{table}] needs file = "...".')
        sources[table] = TableSource(path.parent / spec["file"], dict(spec.get("columns", {})))
    return sources


def import_files(sources: dict[str, TableSource], store_path: Path) -> dict:
    """Validate and load ``sources`` into a fresh store at ``store_path``. Returns a summary with counts."""
    if "products" not in sources:
        raise StoreError("An import needs at least a products file (the catalogue).")
    unknown = sorted(set(sources) - set(IMPORTABLE))
    if unknown:
        raise StoreError(f"Unknown table(s) {unknown}; importable tables are {list(IMPORTABLE)}.")
    summary: dict = {"rows": {}, "handled": {}}

    def fill(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        types = {
            t: dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {t})").fetchall()) for t in IMPORTABLE
        }
        for table in IMPORTABLE:
            if table in sources:
                summary["rows"][table] = _load_table(con, table, sources[table], types[table])
        _check_references(con, sources)
        summary["handled"]["returns"] = con.execute("SELECT count(*) FROM order_items WHERE is_return").fetchone()[0]
        summary["handled"]["customers_added"] = con.execute(
            """INSERT INTO customers (customer_id)
               SELECT DISTINCT customer_id FROM (SELECT customer_id FROM orders UNION SELECT customer_id FROM events)
               WHERE customer_id NOT IN (SELECT customer_id FROM customers)"""
        ).fetchone()[0]
        summary["handled"]["order_items_unknown_product"] = con.execute(
            "SELECT count(*) FROM order_items ANTI JOIN products USING (product_id)"
        ).fetchone()[0]
        return {"source": "import", "files": ", ".join(str(s.file) for s in sources.values())}

    try:
        write_store(store_path, fill)
    except duckdb.Error as exc:
        raise StoreError(f"Import failed: {exc}") from exc
    return summary


def _read(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> str:
    """Load a source file into a temp table with a 1-based ``_row`` column; return the temp table's name."""
    if not path.is_file():
        raise StoreError(f"{path}: file not found (for table {table}).")
    if path.stat().st_size == 0:
        raise StoreError(f"{path}: the file is empty.")
    name = f"raw_{table}"
    suffix = path.suffix.lower()
    literal = "'" + str(path).replace("'", "''") + "'"
    if suffix == ".parquet":
        reader = f"read_parquet({literal})"
    elif suffix in (".csv", ".tsv", ".txt"):
        reader = f"read_csv({literal}, header = true, all_varchar = true)"
    else:
        raise StoreError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet.")
    try:
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT row_number() OVER () AS _row, * FROM {reader}").fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"{path}: cannot be read as {suffix[1:].upper()} ({exc}).") from exc
    if con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == 0:
        raise StoreError(f"{path}: the file has a header but no rows.")
    return name


def _load_table(con: duckdb.DuckDBPyConnection, table: str, source: TableSource, types: dict[str, str]) -> int:
    raw = _read(con, table, source.file)
    available = [r[0] for r in con.execute(f"DESCRIBE {raw}").fetchall() if r[0] != "_row"]
    where = _row_label(source.file)

    unknown_targets = sorted(set(source.columns) - set(types))
    if unknown_targets:
        raise StoreError(
            f"Mapping for {table} names unknown store column(s) {unknown_targets}; store columns are {list(types)}."
        )
    mapping = {col: col for col in types if col in available}
    mapping.update(source.columns)
    for target, src in source.columns.items():
        if src not in available:
            raise StoreError(
                f"{source.file}: no column {src!r} (mapped to {table}.{target}); the file's columns are {available}."
            )
    for col in REQUIRED[table]:
        if col not in mapping:
            raise StoreError(
                f"{source.file}: required column {table}.{col} is missing; add a column named "
                f"{col!r} or map one to it. The file's columns are {available}."
            )

    exprs = {}
    for target, src in mapping.items():
        typ = types[target]
        value = f"nullif(trim(CAST({_q(src)} AS VARCHAR)), '')"
        expr = value if typ == "VARCHAR" else f"TRY_CAST({value} AS {typ})"
        bad = con.execute(
            f"SELECT _row, CAST({_q(src)} AS VARCHAR) FROM {raw} WHERE {value} IS NOT NULL AND {expr} IS NULL "
            "ORDER BY _row LIMIT 1"
        ).fetchone()
        if bad:
            raise StoreError(
                f"{source.file}, {where(bad[0])}, column {src!r}: cannot read {bad[1]!r} as "
                f"{TYPE_WORDS.get(typ, typ)} (for {table}.{target})."
            )
        if target in REQUIRED[table]:
            empty = con.execute(f"SELECT min(_row) FROM {raw} WHERE {value} IS NULL").fetchone()[0]
            if empty is not None:
                raise StoreError(
                    f"{source.file}, {where(empty)}, column {src!r}: empty value, but {table}.{target} is required."
                )
        exprs[target] = expr
    if table == "products" and "in_stock" not in exprs and "price" in exprs:
        exprs["in_stock"] = f"({exprs['price']}) IS NOT NULL"  # a product without a price is not offered
    for (t, col), default in DEFAULTS.items():
        if t == table and col not in exprs:
            exprs[col] = default
    if table == "order_items":
        exprs.setdefault("line_no", f"row_number() OVER (PARTITION BY {exprs['order_id']} ORDER BY _row)")
        exprs["is_return"] = f"coalesce({exprs['quantity']} < 0, FALSE)"
    if table == "customers":
        demo = [exprs[c] for c in ("age", "income", "household_size", "household_comp") if c in exprs]
        exprs["has_demographics"] = " OR ".join(f"{e} IS NOT NULL" for e in demo) if demo else "FALSE"

    if table in UNIQUE:
        key = exprs[UNIQUE[table]]
        dup = con.execute(
            f"SELECT k, list(_row ORDER BY _row) FROM (SELECT {key} AS k, _row FROM {raw}) "
            "GROUP BY k HAVING count(*) > 1 ORDER BY min(_row) LIMIT 1"
        ).fetchone()
        if dup:
            rows = ", ".join(where(r) for r in dup[1][:5])
            raise StoreError(
                f"{source.file}, column {mapping[UNIQUE[table]]!r}: duplicate id {dup[0]!r} "
                f"at {rows}; ids must be unique in {table}."
            )

    columns = ", ".join(exprs)
    con.execute(
        f"INSERT INTO {table} ({columns}) SELECT {', '.join(exprs.values())} FROM {raw} ORDER BY _row"
    ).fetchall()
    return con.execute(f"SELECT count(*) FROM {raw}").fetchone()[0]


def _check_references(con: duckdb.DuckDBPyConnection, sources: dict[str, TableSource]) -> None:
    if "order_items" in sources:
        if "orders" not in sources:
            raise StoreError("order_items need an orders file (order_id, customer_id, ordered_at).")
        orphan = con.execute("SELECT order_id FROM order_items ANTI JOIN orders USING (order_id) LIMIT 1").fetchone()
        if orphan:
            raise StoreError(
                f"{sources['order_items'].file}: order item for unknown order {orphan[0]!r} "
                f"(not in {sources['orders'].file})."
            )


def _row_label(path: Path):
    if path.suffix.lower() == ".parquet":
        return lambda row: f"row {row}"
    return lambda row: f"row {row} (line {row + 1})"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
