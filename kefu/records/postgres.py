"""The PostgreSQL records backend (``KEFU_RECORDS_URL=postgresql://…``), so that several Kefu workers on several
hosts share one conversation log and case book. psycopg 3, an optional dependency (``pip install -e .[scale]``).

One connection per process in autocommit mode, writes in explicit transactions; ``Records`` serialises the
threads. A connection the server dropped (a restart, a network cut) is replaced on the next call, so the
process recovers when the server is back. The migrations run in one transaction under an advisory lock, so
workers starting together apply each step once; ``kefu_schema`` holds the version."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kefu.errors import ConfigError, RecordsError
from kefu.records.dialect import POSTGRES

SCHEMES = ("postgresql", "postgres")
INSTALL = "pip install -r requirements/scale.txt (or pip install -e '.[scale]')"
MIGRATION_LOCK = 0x6B656675  # "kefu": the advisory lock the migrating worker holds
CONNECT_TIMEOUT_S = 5


def is_postgres_url(location: str) -> bool:
    return urlsplit(location).scheme in SCHEMES


def without_password(url: str) -> str:
    """The URL to show in messages and logs: user, host, port and database, never the password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "KEFU_RECORDS_URL names a PostgreSQL database, but its driver (psycopg 3) is not installed: "
            f"{INSTALL}; or unset KEFU_RECORDS_URL to keep the records in SQLite."
        ) from None
    return psycopg


class PostgresBackend:
    dialect = POSTGRES

    def __init__(self, url: str) -> None:
        if not is_postgres_url(url):
            raise ConfigError(
                f"{without_password(url)!r} is not a PostgreSQL URL: write postgresql://USER:PASSWORD@HOST:5432/DB, "
                "or leave KEFU_RECORDS_URL unset to keep the records in SQLite under data_dir."
            )
        self.psycopg = _driver()
        self.url = url
        self.where = without_password(url)
        self.con = self._connect()

    def _connect(self) -> Any:
        psycopg = self.psycopg
        try:
            params = psycopg.conninfo.conninfo_to_dict(self.url)
            params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
            params.setdefault("application_name", "kefu")
            con = psycopg.connect(**params, autocommit=True, row_factory=psycopg.rows.dict_row)
            con.execute("SET TIME ZONE 'UTC'")  # ISO text without a zone is UTC, as in SQLite
            return con
        except psycopg.ProgrammingError as exc:
            raise ConfigError(
                f"KEFU_RECORDS_URL {self.where!r} is not a usable PostgreSQL URL ({_first_line(exc)}): write "
                "postgresql://USER:PASSWORD@HOST:5432/DB."
            ) from None
        except psycopg.Error as exc:
            raise RecordsError(
                f"Cannot reach the records database at {self.where} ({_first_line(exc)}): start the PostgreSQL "
                "server, or check the host, port, user, password and database in KEFU_RECORDS_URL."
            ) from None

    def _connection(self) -> Any:
        if self.con.closed or self.con.broken:  # the server dropped it: reconnect (raises while it is down)
            self.con = self._connect()
        return self.con

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        with self._errors():
            cur = self._connection().execute(_placeholders(sql), params)
            return cur.fetchall() if cur.description is not None else []

    def query_many(self, sql: str, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        if rows:
            with self._errors(), self._connection().cursor() as cur:
                cur.executemany(_placeholders(sql), rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._errors(), self._connection().transaction():
            yield

    def version(self) -> int:
        with self._errors():
            con = self._connection()
            if con.execute("SELECT to_regclass('kefu_schema') AS t").fetchone()["t"] is None:
                return 0
            return con.execute("SELECT version FROM kefu_schema").fetchone()["version"]

    def migrate(self, steps: list[str]) -> int:
        """Apply the steps not applied yet, in one transaction under the migration lock; returns the version."""
        with self.transaction():
            con = self.con
            con.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            con.execute("CREATE TABLE IF NOT EXISTS kefu_schema (version INTEGER NOT NULL)")
            if con.execute("SELECT count(*) AS n FROM kefu_schema").fetchone()["n"] == 0:
                con.execute("INSERT INTO kefu_schema (version) VALUES (0)")
            version = con.execute("SELECT version FROM kefu_schema").fetchone()["version"]
            for step in steps[version:]:
                con.execute(step)  # no parameters: several statements in one go
            con.execute("UPDATE kefu_schema SET version = %s", (max(version, len(steps)),))
        return max(version, len(steps))

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self.psycopg.OperationalError as exc:
            raise RecordsError(
                f"The records database at {self.where} did not answer ({_first_line(exc)}): check that the "
                "PostgreSQL server is running; Kefu reconnects on the next request."
            ) from None


def _placeholders(sql: str) -> str:
    """The records' statements use ``?`` placeholders (SQLite's); psycopg takes ``%s`` (a literal ``%`` is
    ``%%``). No statement has a ``?`` or ``%`` of its own outside SQLite-only SQL."""
    return sql.replace("%", "%%").replace("?", "%s")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
