"""The records database, one interface over two backends: SQLite (one file, the default) and PostgreSQL
(``KEFU_RECORDS_URL=postgresql://…``, shared by workers on several hosts). Both take the same statements
(``?`` placeholders, ``Dialect`` pieces where the SQL differs) and the same migration list
(``kefu/records/migrations.py``). Everything that reads or writes the records opens them here:
``Records.open(settings)``."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from kefu.errors import RecordsError
from kefu.records.dialect import Dialect
from kefu.records.migrations import MIGRATIONS, steps
from kefu.settings import Settings


class Backend(Protocol):
    dialect: Dialect
    where: str  # the file, or the URL without its password

    def query(self, sql: str, params: tuple = ()) -> list[dict]: ...
    def query_many(self, sql: str, rows: Iterable[tuple]) -> None: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def version(self) -> int: ...
    def migrate(self, steps: list[str]) -> int: ...
    def close(self) -> None: ...


class Transaction:
    """Statements inside ``Records.transaction()``: all commit together, or none."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def execute(self, sql: str, params: tuple = ()) -> list[dict]:
        return self._backend.query(sql, params)

    def executemany(self, sql: str, rows: Iterable[tuple]) -> None:
        self._backend.query_many(sql, rows)


class Records:
    """One connection to the records database, shared by the log, the case book and the copilot's list; the
    threads of a process take turns on it. ``location`` is the SQLite file (a Path) or a PostgreSQL URL;
    ``upto`` stops the migrations after that many steps (to build an older database in a test)."""

    def __init__(self, location: Path | str, *, upto: int | None = None) -> None:
        self.lock = threading.Lock()
        self.backend = _backend(location)
        self.dialect = self.backend.dialect
        self.where = self.backend.where
        version = self.backend.migrate(steps(self.dialect)[:upto])
        if version > len(MIGRATIONS):
            self.backend.close()
            raise RecordsError(
                f"The records database {self.where} is at schema version {version}, newer than this Kefu knows "
                f"({len(MIGRATIONS)}): upgrade Kefu, or point KEFU_RECORDS_URL / KEFU_DATA_DIR elsewhere."
            )

    @classmethod
    def open(cls, settings: Settings) -> Records:
        """The records the settings name: ``records_url`` (PostgreSQL) when set, else SQLite at ``records_path``."""
        return cls(settings.records_location)

    @classmethod
    def open_existing(cls, settings: Settings) -> Records | None:
        """As ``open``, but None where nothing was recorded yet (no SQLite file; never creates one)."""
        location = settings.records_location
        if isinstance(location, Path) and not location.is_file():
            return None
        return cls(location)

    def rows(self, sql: str, params: tuple = ()) -> list[dict]:
        with self.lock:
            return self.backend.query(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self.lock, self.backend.transaction():
            yield Transaction(self.backend)

    def version(self) -> int:
        with self.lock:
            return self.backend.version()

    def close(self) -> None:
        self.backend.close()


def _backend(location: Path | str) -> Backend:
    if isinstance(location, Path):
        from kefu.records.sqlite import SqliteBackend

        return SqliteBackend(location)
    from kefu.records.postgres import PostgresBackend

    return PostgresBackend(location)
