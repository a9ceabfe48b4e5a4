"""The conversation log: one row per turn, one per tool call, in the records database. The input of the
offline eval. Text is PII-redacted before it is written. Rows come in as plain records (``TurnRecord``), so
this layer knows nothing of the assistant's event types; the loop builds the record from its events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kefu.records.db import Records
from kefu.records.redact import redact


@dataclass(frozen=True)
class ToolCallRecord:
    name: str
    arguments: dict[str, Any]
    ok: bool
    product_ids: list[str]
    latency_ms: float
    summary: str = ""


@dataclass(frozen=True)
class TurnRecord:
    conversation_id: str
    turn: int
    customer_id: str | None
    message: str
    reply: str
    understanding: dict[str, Any] | None = None  # Understanding.model_dump(mode="json")
    source: str = ""
    product_ids: list[str] = field(default_factory=list)
    card_prices: list[float | None] = field(default_factory=list)  # aligned with product_ids
    outcome: str = "answered"
    repairs: int = 0
    refused: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    handoff_case: str | None = None
    tools: list[ToolCallRecord] = field(default_factory=list)


class ConversationLog:
    def __init__(self, records: Records) -> None:
        self.records = records

    def record(self, turn: TurnRecord) -> int:
        with self.records.transaction() as tx:
            (row,) = tx.execute(
                """INSERT INTO turns (conversation_id, turn, customer_id, message, understanding,
                   understanding_source, reply, product_ids, repairs, refused, prompt_tokens, completion_tokens,
                   timings, handoff_case, outcome, card_prices) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                   RETURNING id""",
                (
                    turn.conversation_id,
                    turn.turn,
                    turn.customer_id,
                    redact(turn.message[:4000]),
                    redact(json.dumps(turn.understanding)) if turn.understanding is not None else None,
                    turn.source,
                    redact(turn.reply),
                    json.dumps(turn.product_ids),
                    turn.repairs,
                    turn.refused,
                    turn.tokens.get("prompt", 0),
                    turn.tokens.get("completion", 0),
                    json.dumps(turn.timings_ms),
                    turn.handoff_case,
                    turn.outcome,
                    json.dumps(turn.card_prices),
                ),
            )
            turn_id = row["id"]
            tx.execute(
                """INSERT INTO conversations (conversation_id, customer_id, started_at, last_at, last_turn_id, turns,
                                             last_message)
                   SELECT conversation_id, customer_id, created_at, created_at, id, 1, message FROM turns WHERE id = ?
                   ON CONFLICT (conversation_id) DO UPDATE SET
                       customer_id = coalesce(excluded.customer_id, conversations.customer_id),
                       last_at = excluded.last_at, last_turn_id = excluded.last_turn_id,
                       turns = conversations.turns + 1,
                       last_message = excluded.last_message""",
                (turn_id,),
            )
            tx.executemany(
                "INSERT INTO tool_calls (turn_id, name, arguments, ok, product_ids, latency_ms, summary) "
                "VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        turn_id,
                        t.name,
                        redact(json.dumps(t.arguments, default=str)),
                        int(t.ok),
                        json.dumps(t.product_ids),
                        t.latency_ms,
                        redact(t.summary[:2000]),
                    )
                    for t in turn.tools
                ],
            )
        return turn_id

    def turns(self, conversation_id: str | None = None) -> list[dict]:
        sql = "SELECT * FROM turns" + (" WHERE conversation_id = ?" if conversation_id else "") + " ORDER BY id"
        return self.records.rows(sql, (conversation_id,) if conversation_id else ())

    def feedback(self, conversation_id: str, turn: int, rating: int, comment: str = "") -> None:
        """A shopper's thumbs up (+1) or down (-1) on one turn's reply."""
        if rating not in (-1, 1):
            raise ValueError("rating is +1 (thumbs up) or -1 (thumbs down)")
        with self.records.transaction() as tx:
            tx.execute(
                "INSERT INTO feedback (conversation_id, turn, rating, comment) VALUES (?,?,?,?)",
                (conversation_id, turn, rating, redact(comment[:1000])),
            )

    def mark_read(self, conversation_id: str) -> None:
        """An agent opened the conversation: what the shopper wrote so far is no longer unread."""
        self._stamp("read_at", conversation_id)

    def mark_replied(self, conversation_id: str) -> None:
        """An agent sent a reply into the conversation: the shopper is no longer waiting (until they write)."""
        self._stamp("replied_at", conversation_id)

    def _stamp(self, column: str, conversation_id: str) -> None:
        with self.records.transaction() as tx:
            tx.execute(
                f"UPDATE conversations SET {column} = {self.records.dialect.now_ms} WHERE conversation_id = ?",
                (conversation_id,),
            )

    def ratings(self, conversation_id: str) -> dict[int, int]:
        """turn -> the latest rating (+1 / -1) a shopper gave that turn's reply."""
        rows = self.records.rows(
            "SELECT turn, rating FROM feedback WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        )
        return {r["turn"]: r["rating"] for r in rows}

    def tool_calls(self, turn_id: int) -> list[dict]:
        return self.records.rows("SELECT * FROM tool_calls WHERE turn_id = ? ORDER BY id", (turn_id,))
