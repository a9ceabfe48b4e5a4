"""Behaviour features per customer, computed in SQL over the store (``segmentation/sql/features.sql``).

``build_features(con, as_of)`` writes the table ``customer_features`` into the database ``con`` is connected to:
one row per customer with at least one counted order before ``as_of``; ``compute_features(engine, as_of)`` does the
same on any ``segmentation.engine.SqlEngine`` (DuckDB, Spark). Every definition is documented in the SQL file; this
module only picks the as-of moment and the departments that get a ``dept_<name>`` share column.
"""

from __future__ import annotations

import re
from datetime import datetime

import duckdb

from kefu.errors import StoreError
from segmentation.engine import DuckDBEngine, SqlEngine, named_queries, sql_file

TOP_DEPARTMENTS = 8

FEATURE_COLUMNS = (
    "customer_id", "as_of", "recency_days", "frequency", "monetary", "tenure_days", "avg_basket_value",
    "avg_basket_size", "interpurchase_days", "discount_share", "coupon_share", "n_coupon_redemptions",
    "private_label_share", "weekend_share", "evening_share", "hour_mean", "trend_90d", "n_views", "n_carts",
    "n_purchases", "top_department", "top_category",
)  # fmt: skip  # then the dept_<name> columns


def features_sql() -> str:
    return sql_file("features.sql")


def default_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """Midnight of the day after the store's last order (so that day's buyers get recency 1)."""
    row = con.execute("SELECT max(ordered_at)::DATE + 1 FROM orders").fetchall()[0]
    if row[0] is None:
        raise StoreError(
            "The store has no orders, so there is nothing to compute features from. "
            "Build the demo store with `kefu store build` or import orders with `kefu store import`."
        )
    return datetime.combine(row[0], datetime.min.time())


def column_name(department: str) -> str:
    """``dept_`` + the department lower-cased with runs of non-alphanumerics as "_" ("DRUG GM" -> dept_drug_gm)."""
    return "dept_" + (re.sub(r"[^0-9a-z]+", "_", department.lower()).strip("_") or "unnamed")


def render_sql(sql: str, departments: list[str]) -> str:
    """Fill the department placeholders: one spend column (and its pass-through) and one share column each."""
    names = [column_name(d) for d in departments]
    if len(set(names)) != len(names):
        raise StoreError(f"Departments {departments} map to clashing column names {names}; rename one.")
    spend, refs, share = [], [], []
    for department, name in zip(departments, names, strict=True):
        literal = "'" + department.replace("'", "''") + "'"
        spend.append(
            f",\n           coalesce(sum(gross_spend) FILTER (WHERE department = {literal}), 0) AS spend_{name}"
        )
        refs.append(f",\n           l.spend_{name}")
        share.append(f",\n       coalesce(b.spend_{name} / nullif(b.gross_spend, 0), 0) AS {name}")
    return (
        sql.replace("{dept_spend_columns}", "".join(spend))
        .replace("{dept_spend_refs}", "".join(refs))
        .replace("{dept_share_columns}", "".join(share))
    )


def compute_features(engine: SqlEngine, as_of: datetime, n_departments: int = TOP_DEPARTMENTS) -> int:
    """Create or replace ``customer_features`` as of ``as_of`` on ``engine``; returns the number of rows."""
    queries = named_queries(features_sql())
    params = {"as_of": as_of}
    engine.create("customer_category_lines", queries["customer_category_lines"], params)
    departments = [row[0] for row in engine.rows(queries["department_spend"])][:n_departments]
    engine.create("customer_features", render_sql(queries["customer_features"], departments), params, temporary=False)
    engine.drop("customer_category_lines")
    count = engine.rows("SELECT count(*) FROM customer_features")[0][0]
    if count == 0:
        raise StoreError(f"No customer has an order before {as_of:%Y-%m-%d %H:%M}; pick a later --as-of.")
    return count


def build_features(
    con: duckdb.DuckDBPyConnection, as_of: datetime | None = None, n_departments: int = TOP_DEPARTMENTS
) -> int:
    """Create or replace ``customer_features`` in ``con`` as of ``as_of`` (default: day after the last order)."""
    return compute_features(DuckDBEngine(con), as_of or default_as_of(con), n_departments)
