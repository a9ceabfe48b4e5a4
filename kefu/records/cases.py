"""Support cases (handoffs to a human) and return requests, in the records database; reasons and summaries
are PII-redacted like the conversation log."""

from __future__ import annotations

import json
import uuid

from kefu.records.db import Records
from kefu.records.redact import redact


class CaseBook:
    def __init__(self, records: Records) -> None:
        self.records = records

    def open_case(
        self, conversation_id: str, customer_id: str | None, priority: str, reason: str, summary: dict
    ) -> str:
        case_id = "CASE-" + uuid.uuid4().hex[:8].upper()
        with self.records.lock, self.records.con as con:
            con.execute(
                "INSERT INTO cases (case_id, conversation_id, customer_id, priority, reason, summary, status) "
                "VALUES (?,?,?,?,?,?, 'open')",
                (
                    case_id,
                    conversation_id,
                    customer_id,
                    priority,
                    redact(reason),
                    redact(json.dumps(summary, default=str)),
                ),
            )
        return case_id

    def take(self, case_id: str, agent: str) -> dict:
        """Mark an open case as taken by ``agent``; a case someone already took keeps its first taker.
        Returns the case row as it now stands (KeyError for an unknown case)."""
        with self.records.lock, self.records.con as con:
            con.execute(
                "UPDATE cases SET status = 'taken', taken_by = ?, taken_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
                "WHERE case_id = ? AND status = 'open'",
                (agent.strip()[:80] or "agent", case_id),
            )
        rows = self.records.rows("SELECT * FROM cases WHERE case_id = ?", (case_id,))
        if not rows:
            raise KeyError(f"no case {case_id}")
        return rows[0]

    def create_return(self, customer_id: str, order_id: str, product_id: str | None, reason: str) -> str:
        return_id = "RET-" + uuid.uuid4().hex[:8].upper()
        with self.records.lock, self.records.con as con:
            con.execute(
                "INSERT INTO returns (return_id, customer_id, order_id, product_id, reason, status) "
                "VALUES (?,?,?,?,?, 'requested')",
                (return_id, customer_id, order_id, product_id, redact(reason)),
            )
        return return_id

    def rows(self, table: str) -> list[dict]:
        if table not in ("cases", "returns"):
            raise ValueError(f"no table {table!r} in the case book")
        return self.records.rows(f"SELECT * FROM {table} ORDER BY created_at")
