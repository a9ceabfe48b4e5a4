"""The records database's one migration list, for both backends: each step is SQL with a few ``{token}`` slots
(``Dialect.migration_tokens``: the integer id column, the clock default, the float type, the cases' insertion
order) that ``steps(dialect)`` fills in; rendered for SQLite, a step is exactly the text that shipped. Add a
migration by appending a step; never edit one that has shipped. Write the step in SQL both databases take
(``ALTER TABLE … ADD COLUMN``, ``CREATE INDEX``, ``INSERT … SELECT``), with a token where they differ."""

from __future__ import annotations

from kefu.records.dialect import Dialect

MIGRATIONS = [
    """
    CREATE TABLE turns (
        id {id},
        conversation_id TEXT NOT NULL,
        turn INTEGER NOT NULL,
        customer_id TEXT,
        created_at TEXT NOT NULL DEFAULT ({now_ms}),
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
        id {id},
        turn_id INTEGER NOT NULL REFERENCES turns (id),
        name TEXT NOT NULL,
        arguments TEXT NOT NULL,
        ok INTEGER NOT NULL,
        product_ids TEXT NOT NULL,
        latency_ms {real} NOT NULL,
        summary TEXT
    );
    """,
    "ALTER TABLE turns ADD COLUMN handoff_case TEXT;",
    """
    CREATE TABLE cases (
        case_id TEXT PRIMARY KEY, created_at TEXT NOT NULL DEFAULT ({now_text}), conversation_id TEXT,
        customer_id TEXT, priority TEXT NOT NULL, reason TEXT NOT NULL, summary TEXT NOT NULL, status TEXT NOT NULL{rowid}
    );
    CREATE TABLE returns (
        return_id TEXT PRIMARY KEY, created_at TEXT NOT NULL DEFAULT ({now_text}), customer_id TEXT NOT NULL,
        order_id TEXT NOT NULL, product_id TEXT, reason TEXT NOT NULL, status TEXT NOT NULL
    );
    """,  # noqa: E501 ({rowid}: PostgreSQL's stand-in for SQLite's implicit rowid; the SQLite text is as shipped)
    """
    ALTER TABLE turns ADD COLUMN outcome TEXT;
    ALTER TABLE turns ADD COLUMN card_prices TEXT;  -- JSON list, aligned with product_ids
    CREATE TABLE feedback (
        id {id},
        created_at TEXT NOT NULL DEFAULT ({now_ms}),
        conversation_id TEXT NOT NULL,
        turn INTEGER NOT NULL,
        rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
        comment TEXT
    );
    """,
    """
    ALTER TABLE cases ADD COLUMN taken_by TEXT;  -- the support agent who took the case (status 'taken')
    ALTER TABLE cases ADD COLUMN taken_at TEXT;
    """,
    # The copilot's queue: closing a case with a note, and one summary row per conversation (kept by
    # ConversationLog.record) so the conversation list pages in SQL; backfilled from the turns already logged.
    """
    ALTER TABLE cases ADD COLUMN closed_by TEXT;
    ALTER TABLE cases ADD COLUMN closed_at TEXT;
    ALTER TABLE cases ADD COLUMN close_note TEXT;
    CREATE INDEX cases_conversation ON cases (conversation_id, created_at);
    CREATE INDEX cases_status ON cases (status, taken_by);
    CREATE INDEX turns_outcome ON turns (conversation_id, outcome);
    CREATE INDEX feedback_conversation ON feedback (conversation_id, rating);
    CREATE TABLE conversations (
        conversation_id TEXT PRIMARY KEY,
        customer_id TEXT,
        started_at TEXT NOT NULL,
        last_at TEXT NOT NULL,        -- the shopper's last message (its turn's created_at)
        last_turn_id INTEGER NOT NULL, -- turns.id of that message: orders conversations within one millisecond
        turns INTEGER NOT NULL,
        last_message TEXT NOT NULL,   -- redacted, as in turns
        read_at TEXT,                 -- an agent last opened it in the copilot
        replied_at TEXT               -- an agent last sent a reply into it
    );
    INSERT INTO conversations (conversation_id, customer_id, started_at, last_at, last_turn_id, turns, last_message)
        SELECT t.conversation_id, max(t.customer_id), min(t.created_at), max(t.created_at), max(t.id), count(*),
               (SELECT l.message FROM turns l WHERE l.conversation_id = t.conversation_id ORDER BY l.id DESC LIMIT 1)
        FROM turns t GROUP BY t.conversation_id;
    CREATE INDEX conversations_last ON conversations (last_turn_id);
    CREATE INDEX conversations_customer ON conversations (customer_id, last_turn_id);
    """,
]


def steps(dialect: Dialect) -> list[str]:
    """The migrations as this database runs them."""
    rendered = []
    for step in MIGRATIONS:
        for token, sql in dialect.migration_tokens().items():
            step = step.replace("{" + token + "}", sql)
        rendered.append(step)
    return rendered
