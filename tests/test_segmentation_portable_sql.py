"""The segmentation SQL stays in the subset DuckDB and Spark read alike (sqlglot; no engine started, sub-second).

Each query of ``segmentation/sql/*.sql`` (the engine function files aside) must parse as DuckDB and as Spark SQL and
use only functions on the portable list below, none of the constructs the two engines read differently or one of
them lacks. tests/test_segmentation_spark.py runs the same text on both engines and compares the results.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from segmentation.engine import named_queries
from segmentation.features import render_sql

SQL_DIR = Path(str(resources.files("segmentation").joinpath("sql")))
ENGINE_FUNCTIONS = ("duckdb_functions.sql", "spark_functions.sql")  # engine-specific on purpose

# Built-ins both engines have with the same meaning (sqlglot's expression classes), and the three functions each
# engine defines itself (sql/duckdb_functions.sql, sql/spark_functions.sql).
PORTABLE_FUNCTIONS = {
    exp.And, exp.Or, exp.Not, exp.If, exp.Case, exp.Cast, exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least,
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Round, exp.Hour, exp.Minute,
    exp.RowNumber, exp.DenseRank, exp.Ntile,
}  # fmt: skip
ENGINE_DEFINED = {"days_between", "seconds_between", "is_weekend"}


def portability_problems(query: str) -> list[str]:
    """What in ``query`` would not run, or not mean the same, on both DuckDB and Spark."""
    problems = []
    for dialect in ("duckdb", "spark"):
        try:
            sqlglot.parse_one(query, read=dialect)
        except sqlglot.errors.ParseError as exc:
            problems.append(f"{dialect} cannot parse it: {str(exc).splitlines()[0]}")
    if problems:
        return problems
    tree = sqlglot.parse_one(query, read="duckdb")
    for node in tree.walk():
        if isinstance(node, exp.Star) and any(node.args.get(k) for k in ("except_", "replace", "rename")):
            problems.append("* EXCLUDE / REPLACE (Spark has no such star): list the columns")
        elif isinstance(node, exp.Order) and isinstance(
            node.find_ancestor(exp.AggFunc, exp.Window, exp.Query), exp.AggFunc
        ):
            problems.append(f"an ordered aggregate ({node.parent.sql('duckdb')}): use row_number() in a subquery")
        elif isinstance(node, exp.Bracket | exp.Slice):
            problems.append(f"list indexing or slicing ({node.sql('duckdb')}): Spark lists are 0-based and unordered")
        elif isinstance(node, exp.Qualify):
            problems.append("QUALIFY (Spark has none): filter a subquery")
        elif isinstance(node, exp.Literal) and node.is_number and not node.this.isdigit():
            problems.append(
                f"the fractional literal {node.this} is a DECIMAL, and Spark's decimal arithmetic keeps few "
                "digits: write an integer (x / 60 is a DOUBLE on both)"
            )
        elif isinstance(node, exp.Anonymous) and node.name.lower() not in ENGINE_DEFINED:
            problems.append(f"{node.name}() is not on the portable list")
        elif (
            isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous) and type(node) not in PORTABLE_FUNCTIONS
        ):
            hint = {
                exp.DayOfWeek: " (DuckDB counts Sunday = 0, Spark Sunday = 1): use is_weekend()",
                exp.DateDiff: " (DuckDB quotes the unit, Spark must not): use days_between() / seconds_between()",
            }.get(type(node), "; check both engines agree, then add it to PORTABLE_FUNCTIONS")
            problems.append(f"{node.sql_name().lower()}() is not on the portable list{hint}")
    return problems


def segmentation_queries() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(SQL_DIR.glob("*.sql")):
        if path.name in ENGINE_FUNCTIONS:
            continue
        for name, query in named_queries(path.read_text()).items():
            found.append((path.name, name, render_sql(query, ["GROCERY", "DRUG GM"])))
    return found


def test_every_segmentation_query_is_portable():
    queries = segmentation_queries()
    assert {(f, n) for f, n, _ in queries} == {
        ("features.sql", "customer_category_lines"),
        ("features.sql", "department_spend"),
        ("features.sql", "customer_features"),
        ("rfm.sql", "customer_rfm"),
        ("rfm_store_customers.sql", "rfm_customers"),
    }
    problems = {f"{f}:{n}": portability_problems(q) for f, n, q in queries}
    assert problems == {key: [] for key in problems}


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("SELECT g.* EXCLUDE (group_key) FROM grouped g", "EXCLUDE"),
        ("SELECT customer_id, first(department ORDER BY spend DESC) FROM t GROUP BY customer_id", "ordered aggregate"),
        ("SELECT list(category ORDER BY spend DESC)[1:3] FROM t", "slicing"),
        ("SELECT avg(CASE WHEN dayofweek(ordered_at) IN (0, 6) THEN 1 ELSE 0 END) FROM orders", "Sunday = 0"),
        ("SELECT date_diff('day', first_order, last_order) FROM t", "days_between"),
        ("SELECT avg(minute(ordered_at) / 60.0) FROM orders", "fractional literal 60.0"),
        ("SELECT customer_id FROM t QUALIFY row_number() OVER (ORDER BY spend) = 1", "QUALIFY"),
        ("SELECT arg_max(department, spend) FROM t", "not on the portable list"),
        ("SELECT sum(x ORDER BY y) FROM t", "ordered aggregate"),
        ("SELECT FROM WHERE", "cannot parse"),
    ],
)
def test_non_portable_constructs_are_caught(query, problem):
    assert any(problem in p for p in portability_problems(query)), portability_problems(query)
