"""The SQLite records backend (the default): one file under ``data_dir/logs``, one connection shared by the
process's threads (``Records`` serialises them), ``PRAGMA user_version`` counting the migrations applied."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kefu.errors import RecordsError
from kefu.records.dialect import SQLITE


class SqliteBackend:
    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.con = sqlite3.connect(str(path), check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise RecordsError(
                f"Cannot open the records database {path} ({exc}): check that data_dir (KEFU_DATA_DIR) is writable."
            ) from None
        with self._errors():
            self.con.execute("PRAGMA journal_mode=WAL")

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        with self._errors():
            cur = self.con.execute(sql, params)
            if cur.description is None:
                return []
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def query_many(self, sql: str, rows: Iterable[tuple]) -> None:
        with self._errors():
            self.con.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.con:
            yield

    def version(self) -> int:
        with self._errors():
            return self.con.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, steps: list[str]) -> int:
        """Apply the steps not applied yet, each in its own transaction; returns the schema version."""
        version = self.version()
        for number, step in enumerate(steps[version:], start=version + 1):
            with self._errors(), self.con:
                self.con.executescript(step)
                self.con.execute(f"PRAGMA user_version = {number}")
        return max(version, len(steps))

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError:
            raise  # a constraint the caller broke, not a database that is unreadable
        except sqlite3.DatabaseError as exc:
            raise RecordsError(f"{self.where} is not a readable Kefu records database ({exc}).") from None
