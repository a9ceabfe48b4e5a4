"""One typed per-turn view of a conversation for the support agents' copilot, built either from a live turn's
events (``assistant/events.py``, as the hub recorded them) or from the conversation log's rows
(``kefu/records/conversations.py``). Both give a ``TurnView``: intent, slots, the tools with their arguments and
outcome, the products shown, repairs and the turn's outcome.

The log keeps less than the events: no tool data (order status, case id …), no cards (product ids and prices
only; the desk looks their catalogue rows up) and the number of repairs, not what they were. Those fields stay
empty for a logged turn.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from assistant.events import Event, ProductCard, Products, Refused, Repaired, ToolCalled, TurnDone, Understood
from assistant.understanding import Slots


class ToolStep(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    ok: bool = True
    summary: str = ""  # what the model saw, or the error text
    product_ids: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)  # live turns only

    def brief(self) -> str:
        """What the tool gave back, in one line: how many products, else its first line of text."""
        if self.product_ids:
            return f"{len(self.product_ids)} product(s)"
        lines = [x.strip() for x in self.summary.splitlines() if x.strip() and not x.startswith(("<<<", ">>>"))]
        return lines[0][:200] if lines else ""


class TurnView(BaseModel):
    turn: int
    message: str = ""
    reply: str = ""
    intent: str | None = None
    goal: str | None = None  # the conversation's goal at this turn (understanding/goal.py)
    source: str = ""
    slots: dict[str, Any] = Field(default_factory=dict)  # the slots that differ from their defaults
    trace: list[str] = Field(default_factory=list)  # the understanding rules that fired, in order
    readers: dict[str, str] = Field(default_factory=dict)  # which reader filled each field: model, classifier, rules
    tools: list[ToolStep] = Field(default_factory=list)
    outcome: str = "answered"
    repairs: list[str] = Field(default_factory=list)  # live turns: what was repaired
    repair_count: int = 0
    product_ids: list[str] = Field(default_factory=list)
    cards: list[ProductCard] = Field(default_factory=list)  # live turns only
    alternatives: bool = False
    coupon: dict[str, str] | None = None
    handoff_case: str | None = None
    return_id: str | None = None
    live: bool = True
    rating: int | None = None  # the shopper's thumbs up (+1) or down (-1), from the log

    def order_id(self) -> str | None:
        """The order this turn was about: a tool's result, a tool's argument, else the shopper's words."""
        for step in self.tools:
            if step.ok and step.data.get("order_id"):
                return str(step.data["order_id"])
        for step in self.tools:
            if step.arguments.get("order_id"):
                return str(step.arguments["order_id"])
        value = self.slots.get("order_id")
        return str(value) if value else None


def _slots(slots: Slots | dict | None) -> dict[str, Any]:
    if slots is None:
        return {}
    if isinstance(slots, dict):
        slots = Slots.model_validate(slots)
    return slots.model_dump(exclude_defaults=True)


def from_events(turn: int, message: str, events: list[Event]) -> TurnView:
    """A live turn: the events the loop yielded for it, in order."""
    view = TurnView(turn=turn, message=message)
    for event in events:
        if isinstance(event, Understood):
            view.intent, view.source = event.understanding.intent, event.source
            view.goal = event.understanding.goal
            view.slots = _slots(event.understanding.slots)
            view.trace = list(event.understanding.trace)
            view.readers = dict(event.understanding.readers)
        elif isinstance(event, ToolCalled):
            view.tools.append(ToolStep(name=event.name, arguments=dict(event.arguments), ok=event.ok,
                                       summary=event.summary, product_ids=list(event.product_ids),
                                       data=dict(event.data)))  # fmt: skip
        elif isinstance(event, Products):
            view.cards, view.alternatives = list(event.items), event.alternatives
            view.product_ids = [c.product_id for c in event.items]
        elif isinstance(event, Repaired):
            view.repairs.append(event.what)
        elif isinstance(event, Refused):
            view.outcome, view.reply = "refused", event.message
        elif isinstance(event, TurnDone):
            view.turn, view.reply, view.outcome = event.turn, event.reply, event.outcome
            view.coupon, view.handoff_case, view.return_id = event.coupon, event.handoff_case, event.return_id
            view.repair_count = max(event.repairs, len(view.repairs))
    return view


def from_live(turns: list[list[Event]], messages: list[tuple[str, str]]) -> list[TurnView]:
    """A live conversation: each turn's events, and the (role, text) messages the shopper's page shows."""
    said = [text for role, text in messages if role == "user"]
    return [from_events(i, said[i - 1] if i <= len(said) else "", events) for i, events in enumerate(turns, 1)]


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def from_log(row: dict, tool_rows: list[dict]) -> TurnView:
    """A logged turn: its ``turns`` row and its ``tool_calls`` rows (``ConversationLog``)."""
    understanding = _json(row.get("understanding"), None) or {}
    tools = [
        ToolStep(name=t["name"], arguments=_json(t["arguments"], {}), ok=bool(t["ok"]), summary=t.get("summary") or "",
                 product_ids=_json(t["product_ids"], []))
        for t in tool_rows
    ]  # fmt: skip
    return TurnView(
        turn=row["turn"],
        message=row["message"],
        reply=row["reply"],
        intent=understanding.get("intent"),
        goal=understanding.get("goal"),
        source=row.get("understanding_source") or "",
        slots=_slots(understanding.get("slots")),
        trace=[str(r) for r in understanding.get("trace", [])],
        readers={str(k): str(v) for k, v in (understanding.get("readers") or {}).items()},
        tools=tools,
        outcome=row.get("outcome") or ("refused" if row.get("refused") else "answered"),
        repair_count=row.get("repairs") or 0,
        product_ids=_json(row.get("product_ids"), []),
        handoff_case=row.get("handoff_case"),
        live=False,
    )


class CaseView(BaseModel):
    """A handoff case as the queue shows it: the case row and its summary (intents, slots, items, tools tried)."""

    case_id: str
    created_at: str = ""
    conversation_id: str | None = None
    customer_id: str | None = None
    priority: str = "normal"
    reason: str = ""
    status: str = "open"
    taken_by: str | None = None
    taken_at: str | None = None
    closed_by: str | None = None
    closed_at: str | None = None
    close_note: str | None = None
    waiting_s: float | None = None  # since the shopper's last message (queue rows only)
    intents: list[str] = Field(default_factory=list)
    slots: dict[str, Any] = Field(default_factory=dict)
    items_shown: list[str] = Field(default_factory=list)  # product ids
    tried: list[str] = Field(default_factory=list)


def case_view(row: dict) -> CaseView:
    summary = _json(row.get("summary"), {})
    return CaseView(
        case_id=row["case_id"],
        created_at=row.get("created_at") or "",
        conversation_id=row.get("conversation_id"),
        customer_id=row.get("customer_id"),
        priority=row.get("priority") or "normal",
        reason=row.get("reason") or "",
        status=row.get("status") or "open",
        taken_by=row.get("taken_by"),
        taken_at=row.get("taken_at"),
        closed_by=row.get("closed_by"),
        closed_at=row.get("closed_at"),
        close_note=row.get("close_note"),
        waiting_s=row.get("waiting_s"),
        intents=[str(i) for i in summary.get("intents", [])],
        slots=summary.get("slots") or {},
        items_shown=[str(i) for i in summary.get("items_shown", [])],
        tried=[str(t) for t in summary.get("tried", [])],
    )
