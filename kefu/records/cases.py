"""Support cases (handoffs to a human) and return requests, in the records database; reasons, summaries and
closing notes are PII-redacted like the conversation log. A case is ``open``, then ``taken`` (assigned to an
agent: ``taken_by``), then ``closed`` with a note."""

from __future__ import annotations

import json
import uuid

from kefu.errors import CaseError
from kefu.records.db import Records
from kefu.records.redact import redact

# Every column but the PostgreSQL backend's rowid (the cases' insertion order), so both backends give the same rows.
COLUMNS = ("case_id", "created_at", "conversation_id", "customer_id", "priority", "reason", "summary", "status",
           "taken_by", "taken_at", "closed_by", "closed_at", "close_note")  # fmt: skip
CASE_FIELDS = ", ".join(COLUMNS)


def _agent(name: str) -> str:
    return name.strip()[:80] or "agent"


class CaseBook:
    def __init__(self, records: Records) -> None:
        self.records = records

    def open_case(
        self, conversation_id: str, customer_id: str | None, priority: str, reason: str, summary: dict
    ) -> str:
        case_id = "CASE-" + uuid.uuid4().hex[:8].upper()
        with self.records.transaction() as tx:
            tx.execute(
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

    def case(self, case_id: str) -> dict:
        """The case row (CaseError for an unknown case)."""
        rows = self.records.rows(f"SELECT {CASE_FIELDS} FROM cases WHERE case_id = ?", (case_id,))
        if not rows:
            raise CaseError(f"There is no case {case_id}; pick one from the handoff queue.")
        return rows[0]

    def take(self, case_id: str, agent: str) -> dict:
        """Mark an open case as taken by ``agent``; a case someone already took keeps its first taker.
        Returns the case row as it now stands (CaseError for an unknown case)."""
        now = self.records.dialect.now_s
        with self.records.transaction() as tx:
            tx.execute(
                f"UPDATE cases SET status = 'taken', taken_by = ?, taken_at = {now} "
                "WHERE case_id = ? AND status = 'open'",
                (_agent(agent), case_id),
            )
        return self.case(case_id)

    def assign(self, case_id: str, agent: str) -> dict:
        """Assign an unclosed case to ``agent`` (taking it over from whoever had it); returns the case row."""
        if self.case(case_id)["status"] == "closed":
            raise CaseError(f"Case {case_id} is closed; a closed case cannot be assigned.")
        now = self.records.dialect.now_s
        with self.records.transaction() as tx:
            tx.execute(
                f"UPDATE cases SET status = 'taken', taken_by = ?, taken_at = {now} WHERE case_id = ? "
                "AND status != 'closed'",
                (_agent(agent), case_id),
            )
        return self.case(case_id)

    def close(self, case_id: str, agent: str, note: str) -> dict:
        """Close a case with a note saying how it was resolved (redacted like the reason); returns the row."""
        if not note.strip():
            raise CaseError("Write a note saying how the case was resolved before closing it.")
        row = self.case(case_id)
        if row["status"] == "closed":
            raise CaseError(f"Case {case_id} was already closed by {row['closed_by']} at {row['closed_at']}.")
        now = self.records.dialect.now_s
        with self.records.transaction() as tx:
            tx.execute(
                f"UPDATE cases SET status = 'closed', closed_by = ?, closed_at = {now}, close_note = ?, "
                "taken_by = coalesce(taken_by, ?) WHERE case_id = ? AND status != 'closed'",
                (_agent(agent), redact(note.strip()[:2000]), _agent(agent), case_id),
            )
        return self.case(case_id)

    def queue(self, assigned_to: str | None = None, limit: int = 50) -> list[dict]:
        """Unclosed cases (``assigned_to``: only that agent's), by priority, then the longest-waiting shopper
        first; ``waiting_s`` is the time since the shopper's last message (the case's opening without a log)."""
        mine = " AND k.taken_by = ?" if assigned_to else ""
        return self.records.rows(
            f"""SELECT {", ".join("k." + c for c in COLUMNS)},
                       {self.records.dialect.seconds_since("coalesce(c.last_at, k.created_at)")} AS waiting_s
                FROM cases k LEFT JOIN conversations c ON c.conversation_id = k.conversation_id
                WHERE k.status != 'closed'{mine}
                ORDER BY CASE k.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END,
                         waiting_s DESC, c.last_turn_id, k.case_id LIMIT ?""",
            (assigned_to, limit) if assigned_to else (limit,),
        )

    def latest_for(self, conversation_id: str) -> dict | None:
        """The conversation's most recent case, if it has one."""
        rows = self.records.rows(
            f"SELECT {CASE_FIELDS} FROM cases WHERE conversation_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (conversation_id,),
        )
        return rows[0] if rows else None

    def create_return(self, customer_id: str, order_id: str, product_id: str | None, reason: str) -> str:
        return_id = "RET-" + uuid.uuid4().hex[:8].upper()
        with self.records.transaction() as tx:
            tx.execute(
                "INSERT INTO returns (return_id, customer_id, order_id, product_id, reason, status) "
                "VALUES (?,?,?,?,?, 'requested')",
                (return_id, customer_id, order_id, product_id, redact(reason)),
            )
        return return_id

    def rows(self, table: str) -> list[dict]:
        if table not in ("cases", "returns"):
            raise ValueError(f"no table {table!r} in the case book")
        columns = CASE_FIELDS if table == "cases" else "*"
        return self.records.rows(f"SELECT {columns} FROM {table} ORDER BY created_at")
