"""The SQL engine the portable segmentation SQL (``segmentation/sql/``) runs on: one small interface, DuckDB here
and Spark in ``segmentation/spark_engine.py``.

The SQL files hold named queries (a ``-- query: NAME`` line, statements separated by ``;`` at a line end) in a
subset both engines read alike; ``tests/test_segmentation_portable_sql.py`` checks it with sqlglot. What the
engines spell differently is behind three functions each engine defines before the first query
(``sql/duckdb_functions.sql``, ``sql/spark_functions.sql``). Parameters are written ``$name`` (DuckDB's form); the
Spark engine binds the same values as ``:name``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import duckdb

from kefu.errors import StoreError

QUERY_LINE = re.compile(r"^-- query: (\w+)\s*$", re.MULTILINE)
PARAMETER = re.compile(r"\$([A-Za-z_]\w*)")


def sql_file(name: str) -> str:
    """The text of ``segmentation/sql/NAME``."""
    return resources.files("segmentation").joinpath(f"sql/{name}").read_text()


def statements(sql: str) -> list[str]:
    """The file's statements (it holds no ";" at a line end inside a statement or comment)."""
    return [
        part
        for part in sql.split(";\n")
        if any(line.strip() and not line.strip().startswith("--") for line in part.splitlines())
    ]


def named_queries(sql: str) -> dict[str, str]:
    """The file's statements by the name on their ``-- query: NAME`` line."""
    queries = {}
    for statement in statements(sql):
        names = QUERY_LINE.findall(statement)
        if len(names) != 1:
            raise StoreError(f"A segmentation SQL statement needs one `-- query: NAME` line, found {names}.")
        queries[names[0]] = statement.strip().rstrip(";")
    return queries


def used_parameters(query: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters ``query`` names (``$name``): engines refuse values a query does not use."""
    wanted = set(PARAMETER.findall(query))
    missing = wanted - set(params or {})
    if missing:
        raise StoreError(f"The segmentation SQL needs parameter(s) {sorted(missing)} that were not given.")
    return {k: v for k, v in (params or {}).items() if k in wanted}


class SqlEngine(Protocol):
    """What the segmentation steps need of an engine; tables are named, queries are the portable SQL."""

    name: str

    def create(
        self, table: str, query: str, params: Mapping[str, Any] | None = None, *, temporary: bool = True
    ) -> None:
        """Compute ``query`` and keep the result as ``table`` (replacing one of that name)."""

    def rows(self, query: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """The result rows of ``query``."""

    def register_rows(self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
        """A small table from Python rows; ``columns`` are (name, type) with types both engines name alike."""

    def drop(self, table: str) -> None:
        """Forget ``table`` (made by ``create``)."""

    def write_parquet(self, table: str, folder: Path) -> None:
        """Write ``table`` as a folder of Parquet files (replacing the folder)."""


class DuckDBEngine:
    """The portable SQL on a DuckDB connection (the store's tables, or views of them, visible by name)."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        for statement in statements(sql_file("duckdb_functions.sql")):
            con.execute(statement)

    def create(
        self, table: str, query: str, params: Mapping[str, Any] | None = None, *, temporary: bool = True
    ) -> None:
        kind = "TEMP TABLE" if temporary else "TABLE"
        try:
            self.con.execute(f"CREATE OR REPLACE {kind} {table} AS\n{query}", used_parameters(query, params) or None)
        except duckdb.Error as exc:
            raise StoreError(f"Computing {table} failed on DuckDB: {exc}") from exc

    def rows(self, query: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        try:
            return self.con.execute(query, used_parameters(query, params) or None).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"A segmentation query failed on DuckDB: {exc}") from exc

    def register_rows(self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns)})")
        if rows:
            self.con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in columns)})", list(rows))

    def drop(self, table: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {table}")

    def write_parquet(self, table: str, folder: Path) -> None:
        replace_folder(folder)
        target = str(folder / "part-00000.parquet").replace("'", "''")
        self.con.execute(f"COPY (SELECT * FROM {table}) TO '{target}' (FORMAT parquet)")


def replace_folder(folder: Path) -> None:
    """An empty ``folder`` for a table's Parquet files (an old one, a table written before, is removed)."""
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"{folder} is a file; --out needs a folder to write the tables into.")
    if folder.is_dir():
        for part in folder.iterdir():
            if part.is_dir() or not (part.suffix in (".parquet", ".crc") or part.name.startswith(("_", "."))):
                raise StoreError(
                    f"{folder} holds {part.name}, which is not a table's Parquet file; pick another --out."
                )
            part.unlink()
    folder.mkdir(parents=True, exist_ok=True)
