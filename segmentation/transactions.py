"""Load an analyst's transaction file (CSV or Parquet) into DuckDB, validated, for RFM and CLV.

The result is a table ``transactions(row_no, customer_id, order_key, ts, amount)``, one row per file row
(``row_no`` from 1, the header is not a row). Without an order column every row is its own order
(``order_key`` = "row <row_no>"), so identical rows are repeat purchases; ``drop_duplicates`` removes rows identical
in every column of the file (keeping the first) and the report counts them either way.

Bad input raises ``StoreError`` naming the file, the column and the first bad row: a missing column, an empty
customer id, a date that does not parse (with ``date_format`` when given, else ISO), an amount that is not a number.
Negative amounts (returns) and zero amounts are kept and counted; what they mean is up to RFM / CLV.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from kefu.errors import StoreError
from kefu.store import write_store


@dataclass(frozen=True)
class TransactionColumns:
    customer: str
    date: str
    amount: str
    order: str | None = None


@dataclass
class LoadReport:
    file: str
    rows: int  # rows kept in ``transactions``
    customers: int
    duplicate_rows: int  # rows identical (every column) to an earlier row
    dropped_duplicates: int
    negative_amount_rows: int  # returns
    zero_amount_rows: int

    def as_dict(self) -> dict:
        return asdict(self)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def source_relation(path: Path) -> str:
    literal = "'" + str(path).replace("'", "''") + "'"
    if path.suffix.lower() in {".parquet", ".pq"}:
        return f"(SELECT * FROM read_parquet({literal}))"
    return f"read_csv({literal}, all_varchar = true, header = true)"


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def read_header(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """Column names of the file (view ``raw_file``); a CSV the sniffer cannot split gets DuckDB's reason."""
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_file AS SELECT * FROM {source_relation(path)}")
        columns = [r[0] for r in con.execute("DESCRIBE raw_file").fetchall()]
    except duckdb.Error as exc:
        raise StoreError(f"Cannot read {path} as CSV or Parquet: {first_line(exc)}") from exc
    if path.suffix.lower() in {".parquet", ".pq"}:
        return columns
    with path.open("rb") as fh:
        header_line = (fh.read(1 << 16).decode("utf-8", errors="replace").splitlines() or [""])[0]
    if (len(columns) == 1 and "," in columns[0]) or any(c not in header_line for c in columns):
        # The sniffer did not take the first line as the header (ragged rows, stray quotes): read the file as
        # plain comma-separated CSV with that header, so a bad line is named.
        literal = "'" + str(path).replace("'", "''") + "'"
        header = next(csv.reader([header_line]))
        spec = "{" + ", ".join("'" + name.replace("'", "''") + "': 'VARCHAR'" for name in header) + "}"
        relation = (
            f"read_csv({literal}, header = true, delim = ',', quote = '\"', auto_detect = false, "
            f"strict_mode = true, columns = {spec})"
        )
        try:
            con.execute(f"SELECT count(*) FROM {relation}").fetchall()
            con.execute(f"CREATE OR REPLACE TEMP VIEW raw_file AS SELECT * FROM {relation}")
            columns = header
        except duckdb.Error as exc:
            reason = "; ".join(str(exc).replace("Invalid Input Error: ", "").strip().splitlines()[:3])
            raise StoreError(f"{path} is not a well-formed CSV: {reason}") from exc
    return columns


def load_transactions(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    columns: TransactionColumns,
    *,
    date_format: str | None = None,
    drop_duplicates: bool = False,
) -> LoadReport:
    """Validate ``path`` and (re)create the ``transactions`` table in ``con``."""
    if not path.is_file():
        raise StoreError(f"No transaction file at {path}.")
    if path.stat().st_size == 0:
        raise StoreError(f"{path} is empty; it needs a header row and one row per transaction.")
    available = read_header(con, path)
    wanted = {"customer": columns.customer, "date": columns.date, "amount": columns.amount}
    if columns.order is not None:
        wanted["order"] = columns.order
    for role, name in wanted.items():
        if name not in available:
            raise StoreError(
                f"{path} has no column '{name}' (given as the {role} column). Its columns are: {', '.join(available)}."
            )

    all_cols = ", ".join(f"{quote(c)}::VARCHAR AS {quote(c)}" for c in available)
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE raw_rows AS
            SELECT row_number() OVER () AS row_no, * FROM (SELECT {all_cols} FROM raw_file)
        """)
    except duckdb.Error as exc:
        raise StoreError(f"Cannot read {path}: {first_line(exc)}") from exc
    if con.execute("SELECT count(*) FROM raw_rows").fetchall()[0][0] == 0:
        raise StoreError(f"{path} has a header but no transaction rows.")
    partition = ", ".join(quote(c) for c in available)
    duplicates = con.execute(f"""
        SELECT count(*) FROM (
            SELECT row_number() OVER (PARTITION BY {partition} ORDER BY row_no) AS k FROM raw_rows) WHERE k > 1
    """).fetchall()[0][0]
    if drop_duplicates and duplicates:
        con.execute(f"""
            DELETE FROM raw_rows WHERE row_no IN (
                SELECT row_no FROM (SELECT row_no, row_number() OVER (PARTITION BY {partition} ORDER BY row_no) AS k
                                    FROM raw_rows) WHERE k > 1)
        """)

    customer, date, amount = quote(columns.customer), quote(columns.date), quote(columns.amount)
    parse_date = (
        f"try_strptime(trim({date}), '{date_format.replace(chr(39), chr(39) * 2)}')"
        if date_format
        else f"try_cast(trim({date}) AS TIMESTAMP)"
    )
    order = f"trim({quote(columns.order)})" if columns.order else "NULL"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE parsed_rows AS
        SELECT row_no, nullif(trim({customer}), '') AS customer_id, {order} AS order_id,
               {date} AS date_text, {parse_date} AS ts, {amount} AS amount_text,
               try_cast(trim({amount}) AS DOUBLE) AS amount
        FROM raw_rows
    """)
    check_rows(con, path, columns, date_format)

    con.execute("""
        CREATE OR REPLACE TABLE transactions AS
        SELECT row_no, customer_id, coalesce(order_id, 'row ' || row_no) AS order_key, ts, amount
        FROM parsed_rows ORDER BY row_no
    """)
    rows, customers, negative, zero = con.execute("""
        SELECT count(*), count(DISTINCT customer_id), count(*) FILTER (WHERE amount < 0),
               count(*) FILTER (WHERE amount = 0)
        FROM transactions
    """).fetchall()[0]
    for name in ("raw_rows", "parsed_rows"):
        con.execute(f"DROP TABLE {name}")
    con.execute("DROP VIEW raw_file")
    return LoadReport(
        file=str(path),
        rows=rows,
        customers=customers,
        duplicate_rows=duplicates,
        dropped_duplicates=duplicates if drop_duplicates else 0,
        negative_amount_rows=negative,
        zero_amount_rows=zero,
    )


def check_rows(
    con: duckdb.DuckDBPyConnection, path: Path, columns: TransactionColumns, date_format: str | None
) -> None:
    """Raise on the first row with no customer, an unparseable date or amount, or an empty order id."""
    hint = f" with format '{date_format}'" if date_format else " (ISO 8601; pass --date-format, e.g. %Y%m%d)"
    checks = [
        ("customer_id IS NULL", columns.customer, "is empty", None),
        ("ts IS NULL", columns.date, "cannot be parsed as a date" + hint, "date_text"),
        ("amount IS NULL", columns.amount, "is not a number", "amount_text"),
    ]
    if columns.order:
        checks.append(("order_id IS NULL OR order_id = ''", columns.order, "is empty", None))
    for condition, column, problem, text_col in checks:
        count, first_row, first_text = con.execute(
            f"SELECT count(*), min(row_no), arg_min({text_col or 'NULL'}, row_no) FROM parsed_rows WHERE {condition}"
        ).fetchall()[0]
        if count:
            value = f" ({first_text!r})" if text_col else ""
            raise StoreError(
                f"{path}: column '{column}' {problem} in {count} row(s); first at row {first_row} "
                f"(line {first_row + 1}){value}. Fix or remove those rows."
            )
    if columns.order:
        clash = con.execute("""
            SELECT order_id, min(row_no) FROM parsed_rows GROUP BY order_id
            HAVING count(DISTINCT customer_id) > 1 ORDER BY 2 LIMIT 1
        """).fetchall()
        if clash:
            raise StoreError(
                f"{path}: order '{clash[0][0]}' (column '{columns.order}') belongs to more than one "
                f"customer (first at row {clash[0][1]}). An order id must name one customer's order."
            )


UNSPECIFIED_PRODUCT = "unspecified"  # the product of every order line built from a plain transaction file


def store_from_transactions(
    path: Path,
    columns: TransactionColumns,
    store_path: Path,
    *,
    date_format: str | None = None,
    drop_duplicates: bool = False,
) -> LoadReport:
    """Build a shop store (atomically replacing ``store_path``) from a transaction file without a catalogue, so
    ``kefu segment fit`` can run on it: a customer per customer id, an order per order id (per row without an
    order column; its time is its first row's), one order line per row naming the product ``"unspecified"``
    (not in ``products``), a negative amount as a returned line, and one purchase event per line. Validation and
    the counts are those of ``load_transactions``."""
    report: list[LoadReport] = []

    def fill(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        report.append(load_transactions(con, path, columns, date_format=date_format, drop_duplicates=drop_duplicates))
        con.execute("INSERT INTO customers (customer_id) SELECT DISTINCT customer_id FROM transactions")
        con.execute("""INSERT INTO orders SELECT order_key, any_value(customer_id), min(ts), 'completed', NULL
                       FROM transactions GROUP BY order_key""")
        con.execute(
            """
            INSERT INTO order_items (order_id, line_no, product_id, quantity, amount, is_return)
            SELECT order_key, row_number() OVER (PARTITION BY order_key ORDER BY row_no), $p,
                   CASE WHEN amount < 0 THEN -1 ELSE 1 END, amount, amount < 0
            FROM transactions
        """,
            {"p": UNSPECIFIED_PRODUCT},
        )
        con.execute(
            "INSERT INTO events SELECT customer_id, ts, 'purchase', $p, order_key FROM transactions",
            {"p": UNSPECIFIED_PRODUCT},
        )
        con.execute("DROP TABLE transactions")
        return {
            "source": f"transactions file {path}",
            "note": f"no catalogue: every line's product is '{UNSPECIFIED_PRODUCT}'",
        }

    write_store(store_path, fill)
    return report[0]
