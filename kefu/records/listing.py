"""The copilot's conversation list, in SQL: logged conversations filtered by customer, turn outcome,
thumbs-down, unread, assignee or words the shopper or the assistant wrote, newest shopper message first, one
page at a time (``LIMIT``/``OFFSET`` over the ``conversations`` summary table; nothing loads the whole log).

Each row says how long the shopper has waited since their last message, whether they wrote since an agent last
opened the conversation (``unread``), and whether a shopper with an unclosed case wrote since an agent last
replied (``waiting``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kefu.records.db import Records
from kefu.records.dialect import Dialect

PER_PAGE = 20
MAX_PER_PAGE = 100
UNCLOSED_CASE = "SELECT 1 FROM cases k WHERE k.conversation_id = c.conversation_id AND k.status != 'closed'"
THUMBS_DOWN = "EXISTS (SELECT 1 FROM feedback f WHERE f.conversation_id = c.conversation_id AND f.rating = -1)"
WAITING = f"(EXISTS ({UNCLOSED_CASE}) AND (c.replied_at IS NULL OR c.replied_at < c.last_at))"


@dataclass(frozen=True)
class ConversationQuery:
    customer_id: str | None = None
    text: str | None = None  # words in a shopper's message or a reply (case-insensitive, as written)
    outcome: str | None = None  # a turn outcome: handoff, no_match, declined, refused, answered …
    thumbs_down: bool = False
    unread: bool = False
    waiting: bool = False  # an unclosed case, and the shopper wrote since an agent last replied
    assigned_to: str | None = None  # "mine": conversations with an unclosed case assigned to this agent
    page: int = 1
    per_page: int = PER_PAGE


@dataclass(frozen=True)
class ConversationRow:
    conversation_id: str
    customer_id: str | None
    turns: int
    started_at: str  # ISO (UTC)
    last_at: str  # the shopper's last message
    last_message: str
    waiting_s: float  # since the shopper's last message
    outcomes: tuple[str, ...] = ()  # the distinct outcomes of its turns
    thumbs_down: bool = False
    unread: bool = False
    waiting: bool = False
    case_id: str | None = None  # its latest case, if any
    case_status: str | None = None
    assigned_to: str | None = None


@dataclass(frozen=True)
class ConversationPage:
    rows: list[ConversationRow]
    total: int  # conversations matching the query, over all pages
    page: int
    per_page: int
    query: ConversationQuery = field(default_factory=ConversationQuery)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(q: ConversationQuery, dialect: Dialect) -> tuple[str, list]:
    clauses, params = [], []
    if q.customer_id:
        clauses.append("c.customer_id = ?")
        params.append(q.customer_id.strip())
    if q.text and q.text.strip():
        clauses.append(
            "EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.conversation_id "
            f"AND (t.message {dialect.like} ? ESCAPE '\\' OR t.reply {dialect.like} ? ESCAPE '\\'))"
        )
        params += [_like(q.text.strip())] * 2
    if q.outcome:
        clauses.append("EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.conversation_id AND t.outcome = ?)")
        params.append(q.outcome)
    if q.thumbs_down:
        clauses.append(THUMBS_DOWN)
    if q.unread:
        clauses.append("(c.read_at IS NULL OR c.read_at < c.last_at)")
    if q.waiting:
        clauses.append(WAITING)
    if q.assigned_to:
        clauses.append(f"EXISTS ({UNCLOSED_CASE} AND k.taken_by = ?)")
        params.append(q.assigned_to)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class ConversationList:
    def __init__(self, records: Records) -> None:
        self.records = records

    def page(self, query: ConversationQuery) -> ConversationPage:
        """One page of the conversations matching ``query``, the most recent shopper message first."""
        per_page = min(max(1, query.per_page), MAX_PER_PAGE)
        dialect = self.records.dialect
        where, params = _where(query, dialect)
        total = self.records.rows(f"SELECT count(*) AS n FROM conversations c{where}", tuple(params))[0]["n"]
        pages = max(1, -(-total // per_page))
        page = min(max(1, query.page), pages)
        rows = self.records.rows(
            f"""SELECT c.conversation_id, c.customer_id, c.turns, c.started_at, c.last_at, c.last_message,
                       {dialect.seconds_since("c.last_at")} AS waiting_s,
                       (SELECT {dialect.group_concat("o")} FROM (SELECT DISTINCT coalesce(t.outcome, '') AS o
                        FROM turns t WHERE t.conversation_id = c.conversation_id) AS d) AS outcomes,
                       {THUMBS_DOWN} AS thumbs_down,
                       (c.read_at IS NULL OR c.read_at < c.last_at) AS unread,
                       {WAITING} AS waiting,
                       k.case_id, k.status AS case_status, k.taken_by AS assigned_to
                FROM conversations c
                LEFT JOIN cases k ON k.rowid = (SELECT rowid FROM cases WHERE conversation_id = c.conversation_id
                                                ORDER BY created_at DESC, rowid DESC LIMIT 1)
                {where}
                ORDER BY c.last_turn_id DESC LIMIT ? OFFSET ?""",
            (*params, per_page, (page - 1) * per_page),
        )
        return ConversationPage([_row(r) for r in rows], total, page, per_page, query)


def _row(r: dict) -> ConversationRow:
    outcomes = tuple(sorted(o for o in (r["outcomes"] or "").split(",") if o))
    return ConversationRow(
        conversation_id=r["conversation_id"],
        customer_id=r["customer_id"],
        turns=r["turns"],
        started_at=r["started_at"],
        last_at=r["last_at"],
        last_message=r["last_message"],
        waiting_s=max(0.0, r["waiting_s"] or 0.0),
        outcomes=outcomes,
        thumbs_down=bool(r["thumbs_down"]),
        unread=bool(r["unread"]),
        waiting=bool(r["waiting"]),
        case_id=r["case_id"],
        case_status=r["case_status"],
        assigned_to=r["assigned_to"],
    )
