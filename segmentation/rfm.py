"""RFM scoring in DuckDB SQL (``segmentation/sql/rfm.sql`` documents every definition) with named segments from an
editable rule table (``segmentation/rules/rfm_segments.csv``; pass your own CSV with the same columns).

Two entry points fill ``rfm_customers`` (one row per customer) and score it:
- ``rfm_from_transactions``: an analyst's file loaded by ``segmentation.transactions`` (a row is an order unless
  an order column groups rows); rows dated on or after the as-of date are counted and left out. DuckDB only.
- ``rfm_from_store``: the shop store's orders (not cancelled) with their lines' net amounts
  (``sql/rfm_store_customers.sql``); ``store_rfm`` runs the same on any ``segmentation.engine.SqlEngine``.
The as-of date is exclusive: a purchase the day before it has recency 1.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import duckdb

from kefu.errors import StoreError
from segmentation.engine import DuckDBEngine, SqlEngine, named_queries, sql_file
from segmentation.features import default_as_of

RULE_COLUMNS = ("segment", "r_min", "r_max", "f_min", "f_max")
MIN_CUSTOMERS = 5  # quintiles need at least one customer per bin


@dataclass(frozen=True)
class SegmentRule:
    segment: str
    r_min: int
    r_max: int
    f_min: int
    f_max: int
    description: str = ""

    def covers(self, r: int, f: int) -> bool:
        return self.r_min <= r <= self.r_max and self.f_min <= f <= self.f_max


@dataclass
class RFMReport:
    customers_scored: int
    future_rows_excluded: int  # transactions on or after the as-of date
    return_orders: int
    customers_only_returns: int  # no purchase before as-of: not scored
    segments: dict[str, int]


def default_rules_path() -> Path:
    return Path(str(resources.files("segmentation").joinpath("rules/rfm_segments.csv")))


def load_rules(path: Path | None = None) -> list[SegmentRule]:
    """Read and check a rule table: every (R, F) cell of 1..5 x 1..5 must fall in exactly one rule."""
    path = path or default_rules_path()
    if not path.is_file():
        raise StoreError(f"No RFM rule file at {path}.")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in RULE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise StoreError(
                f"RFM rule file {path} lacks column(s) {', '.join(missing)}; "
                f"it needs {', '.join(RULE_COLUMNS)} (and optionally description)."
            )
        rules = []
        for line, row in enumerate(reader, start=2):
            try:
                bounds = [int(row[c]) for c in RULE_COLUMNS[1:]]
            except (TypeError, ValueError):
                raise StoreError(f"{path} line {line}: score bounds must be whole numbers 1-5.") from None
            if not all(1 <= b <= 5 for b in bounds) or bounds[0] > bounds[1] or bounds[2] > bounds[3]:
                raise StoreError(f"{path} line {line}: bounds must be 1-5 with min <= max, got {bounds}.")
            if not (row["segment"] or "").strip():
                raise StoreError(f"{path} line {line}: the segment name is empty.")
            rules.append(SegmentRule(row["segment"].strip(), *bounds, (row.get("description") or "").strip()))
    problems = []
    for r in range(1, 6):
        for f in range(1, 6):
            names = [rule.segment for rule in rules if rule.covers(r, f)]
            if len(names) != 1:
                problems.append(f"R={r},F={f} is in {' and '.join(names) if names else 'no rule'}")
    if problems:
        raise StoreError(f"RFM rule file {path} must cover each (R, F) cell exactly once: {'; '.join(problems)}.")
    return rules


def segment_of(r: int, f: int, rules: list[SegmentRule]) -> str:
    return next(rule.segment for rule in rules if rule.covers(r, f))


def rfm_query() -> str:
    """The scoring query of ``sql/rfm.sql`` (reads ``rfm_customers`` and ``rfm_rules``)."""
    return named_queries(sql_file("rfm.sql"))["customer_rfm"]


# Per customer from an analyst's transactions: rows grouped into orders first (order value = net amount).
TRANSACTIONS_CUSTOMERS_SQL = """
CREATE OR REPLACE TEMP TABLE rfm_customers AS
WITH per_order AS (
    SELECT customer_id, min(ts) AS ordered_at, sum(amount) AS value
    FROM transactions WHERE ts < $as_of
    GROUP BY customer_id, order_key
)
SELECT customer_id,
       date_diff('day', (max(ordered_at) FILTER (WHERE value >= 0))::DATE, $as_of::DATE) AS recency_days,
       count(*) FILTER (WHERE value >= 0) AS frequency,
       round(sum(value), 6) AS monetary,
       count(*) FILTER (WHERE value < 0) AS returns
FROM per_order GROUP BY customer_id
"""


def score(
    con: duckdb.DuckDBPyConnection, as_of: datetime, rules: list[SegmentRule], output: str = "customer_rfm"
) -> RFMReport:
    """Score ``rfm_customers`` (already in ``con``) into table ``output``."""
    return score_on(DuckDBEngine(con), as_of, rules, output)


def score_on(engine: SqlEngine, as_of: datetime, rules: list[SegmentRule], output: str = "customer_rfm") -> RFMReport:
    """Score ``rfm_customers`` (already on ``engine``) into table ``output`` with ``sql/rfm.sql``."""
    engine.register_rows(
        "rfm_rules",
        [("segment", "STRING"), ("r_min", "INT"), ("r_max", "INT"), ("f_min", "INT"), ("f_max", "INT")],
        [(x.segment, x.r_min, x.r_max, x.f_min, x.f_max) for x in rules],
    )
    buyers, return_orders, only_returns = engine.rows("""
        SELECT count(*) FILTER (WHERE frequency > 0), coalesce(sum(returns), 0), count(*) FILTER (WHERE frequency = 0)
        FROM rfm_customers
    """)[0]
    if buyers < MIN_CUSTOMERS:
        raise StoreError(
            f"RFM quintiles need at least {MIN_CUSTOMERS} customers with a purchase before "
            f"{as_of:%Y-%m-%d}; found {buyers}. Check --as-of and the input."
        )
    engine.create(output, rfm_query(), temporary=False)
    segments = dict(
        engine.rows(f"SELECT segment, count(*) AS n FROM {output} GROUP BY segment ORDER BY n DESC, segment")
    )
    return RFMReport(
        customers_scored=buyers,
        future_rows_excluded=0,
        return_orders=int(return_orders),
        customers_only_returns=only_returns,
        segments=segments,
    )


def rfm_from_transactions(
    con: duckdb.DuckDBPyConnection, as_of: datetime, rules: list[SegmentRule], output: str = "customer_rfm"
) -> RFMReport:
    """Score the ``transactions`` table made by ``segmentation.transactions.load_transactions``."""
    future = con.execute("SELECT count(*) FROM transactions WHERE ts >= $as_of", {"as_of": as_of}).fetchall()[0][0]
    con.execute(TRANSACTIONS_CUSTOMERS_SQL, {"as_of": as_of})
    report = score(con, as_of, rules, output)
    report.future_rows_excluded = future
    return report


def rfm_from_store(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime | None = None,
    rules: list[SegmentRule] | None = None,
    output: str = "customer_rfm",
) -> RFMReport:
    """Score the store's customers (orders not cancelled; value = the sum of the order's line amounts)."""
    return store_rfm(DuckDBEngine(con), as_of or default_as_of(con), rules, output)


def store_rfm(
    engine: SqlEngine, as_of: datetime, rules: list[SegmentRule] | None = None, output: str = "customer_rfm"
) -> RFMReport:
    """``rfm_from_store`` on any engine: ``sql/rfm_store_customers.sql`` then ``sql/rfm.sql``."""
    params = {"as_of": as_of}
    future = engine.rows("SELECT count(*) FROM orders WHERE ordered_at >= $as_of AND status <> 'cancelled'", params)[0][
        0
    ]
    engine.create("rfm_customers", named_queries(sql_file("rfm_store_customers.sql"))["rfm_customers"], params)
    report = score_on(engine, as_of, rules or load_rules(), output)
    report.future_rows_excluded = future
    return report


def score_edges(con: duckdb.DuckDBPyConnection, table: str = "customer_rfm") -> dict[str, list[float]]:
    """Per axis, the best value reached in bins 1-4 of a scored table, for placing a new customer without a
    recompute (``score_value``). Recency edges are the fewest days in each bin (lower is better)."""
    edges = {}
    for axis, col, best in (("r", "recency_days", "min"), ("f", "frequency", "max"), ("m", "monetary", "max")):
        rows = con.execute(f"SELECT {axis}, {best}({col}) FROM {table} GROUP BY 1 ORDER BY 1").fetchall()
        edges[axis] = [float(v) for k, v in rows if k < 5]
    return edges


def score_value(axis: str, value: float, edges: dict[str, list[float]]) -> int:
    """The 1-5 score a value would get against ``score_edges`` (equal to a bin's best value: that bin)."""
    score_ = 1
    for bin_best in edges[axis]:
        if (value < bin_best) if axis == "r" else (value > bin_best):
            score_ += 1
    return min(score_, 5)
