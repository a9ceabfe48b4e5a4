"""Support cases (handoffs to a human) and return requests, kept in SQLite beside the logs so the store itself
stays read-only for the assistant."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY, created_at TEXT NOT NULL DEFAULT (datetime('now')), conversation_id TEXT,
    customer_id TEXT, priority TEXT NOT NULL, reason TEXT NOT NULL, summary TEXT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS returns (
    return_id TEXT PRIMARY KEY, created_at TEXT NOT NULL DEFAULT (datetime('now')), customer_id TEXT NOT NULL,
    order_id TEXT NOT NULL, product_id TEXT, reason TEXT NOT NULL, status TEXT NOT NULL
);
"""


class CaseBook:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(str(path), check_same_thread=False)
        self._con.executescript(SCHEMA)

    def open_case(
        self, conversation_id: str, customer_id: str | None, priority: str, reason: str, summary: dict
    ) -> str:
        case_id = "CASE-" + uuid.uuid4().hex[:8].upper()
        with self._lock, self._con:
            self._con.execute(
                "INSERT INTO cases (case_id, conversation_id, customer_id, priority, reason, summary, status) "
                "VALUES (?,?,?,?,?,?, 'open')",
                (case_id, conversation_id, customer_id, priority, reason, json.dumps(summary, default=str)),
            )
        return case_id

    def create_return(self, customer_id: str, order_id: str, product_id: str | None, reason: str) -> str:
        return_id = "RET-" + uuid.uuid4().hex[:8].upper()
        with self._lock, self._con:
            self._con.execute(
                "INSERT INTO returns (return_id, customer_id, order_id, product_id, reason, status) "
                "VALUES (?,?,?,?,?, 'requested')",
                (return_id, customer_id, order_id, product_id, reason),
            )
        return return_id

    def rows(self, table: str) -> list[dict]:
        assert table in ("cases", "returns")
        with self._lock:
            cur = self._con.execute(f"SELECT * FROM {table} ORDER BY created_at")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
