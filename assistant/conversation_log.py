"""Conversation logs in SQLite (``data_dir/logs/conversations.sqlite``): one row per turn, one per tool call.
The input of the offline eval. Text is PII-redacted before it is written. The schema is versioned: migrations
are a list of small SQL steps applied in order (``PRAGMA user_version`` records how many ran).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from assistant.events import ToolCalled, TurnDone
from assistant.guardrails import redact
from assistant.understanding import Understanding

MIGRATIONS = [
    """
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        turn INTEGER NOT NULL,
        customer_id TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        message TEXT NOT NULL,
        understanding TEXT,          -- JSON of Understanding
        understanding_source TEXT,
        reply TEXT NOT NULL,
        product_ids TEXT NOT NULL,   -- JSON list shown to the shopper
        repairs INTEGER NOT NULL DEFAULT 0,
        refused TEXT,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        timings TEXT NOT NULL        -- JSON {stage: ms}
    );
    CREATE INDEX turns_conversation ON turns (conversation_id, turn);
    CREATE TABLE tool_calls (
        id INTEGER PRIMARY KEY,
        turn_id INTEGER NOT NULL REFERENCES turns (id),
        name TEXT NOT NULL,
        arguments TEXT NOT NULL,
        ok INTEGER NOT NULL,
        product_ids TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        summary TEXT
    );
    """,
    "ALTER TABLE turns ADD COLUMN handoff_case TEXT;",
]


class ConversationLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._con = sqlite3.connect(str(path), check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        migrate(self._con)

    def record(
        self,
        message: str,
        customer_id: str | None,
        understanding: Understanding | None,
        source: str,
        tools: list[ToolCalled],
        done: TurnDone,
        refused: str | None = None,
    ) -> int:
        with self._lock, self._con:
            cur = self._con.execute(
                """INSERT INTO turns (conversation_id, turn, customer_id, message, understanding,
                   understanding_source, reply, product_ids, repairs, refused, prompt_tokens, completion_tokens,
                   timings, handoff_case) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    done.conversation_id,
                    done.turn,
                    customer_id,
                    redact(message[:4000]),
                    understanding.model_dump_json() if understanding else None,
                    source,
                    redact(done.reply),
                    json.dumps([p.product_id for p in done.products]),
                    done.repairs,
                    refused,
                    done.tokens.get("prompt", 0),
                    done.tokens.get("completion", 0),
                    json.dumps(done.timings_ms),
                    done.handoff_case,
                ),
            )
            turn_id = cur.lastrowid
            self._con.executemany(
                "INSERT INTO tool_calls (turn_id, name, arguments, ok, product_ids, latency_ms, summary) "
                "VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        turn_id,
                        t.name,
                        redact(json.dumps(t.arguments)),
                        int(t.ok),
                        json.dumps(t.product_ids),
                        t.latency_ms,
                        redact(t.summary[:2000]),
                    )
                    for t in tools
                ],
            )
        return turn_id

    def turns(self, conversation_id: str | None = None) -> list[dict]:
        with self._lock:
            self._con.row_factory = sqlite3.Row
            sql = "SELECT * FROM turns" + (" WHERE conversation_id = ?" if conversation_id else "") + " ORDER BY id"
            rows = [dict(r) for r in self._con.execute(sql, (conversation_id,) if conversation_id else ())]
            self._con.row_factory = None
        return rows

    def close(self) -> None:
        self._con.close()


def migrate(con: sqlite3.Connection) -> int:
    """Apply the migrations not yet applied; returns the schema version."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with con:
            con.executescript(step)
            con.execute(f"PRAGMA user_version = {number}")
    return len(MIGRATIONS)
