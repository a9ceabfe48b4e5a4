"""One assistant turn as the eval commands see it: the loop's typed events folded into a ``TurnResult``.

Every eval command (cases, dialogues, simulate) runs turns through ``run_turn`` against the real assistant and
scores the result; nothing here parses reply text to find out what happened (the outcome, the tools, the cards
are event data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.events import Event, ProductCard, Products, Refused, ToolCalled, TurnDone, Understood
from assistant.factory import build_assistant
from assistant.loop import Assistant
from assistant.session import Session
from eval.hygiene import check, facts_of
from kefu.settings import Settings

REPLAY_RATE = 1_000_000  # messages per conversation per minute while replaying: a replay is not a shopper


def replay_assistant(settings: Settings) -> Assistant:
    """The real assistant for replaying recorded turns: everything as served, except the per-conversation rate
    limit, which a replay (faster than anyone types) would otherwise trip and score as refused turns."""
    return build_assistant(settings.model_copy(update={"rate_limit_per_minute": REPLAY_RATE}))


@dataclass
class Card:
    product_id: str
    title: str
    price: float | None
    category: str | None
    brand: str | None = None  # "National" | "Private" (store brand) in the demo store
    size: str | None = None  # the package size as the store lists it ("18 OZ", "1/2 GAL")
    price_low: float | None = None  # the price range of the alike products a merged card stands for
    price_high: float | None = None


@dataclass
class TurnResult:
    message: str
    reply: str
    outcome: str
    intent: str | None
    budget_max: float | None
    tools: list[str]
    tool_errors: int
    cards: list[Card]  # products shown as matches
    known_prices: set[str]  # every price a tool stated this session, as "1.29"
    known_ids: set[str]  # every id (5+ digits) a tool stated this session
    repairs: int
    total_ms: float
    refused: str | None = None
    lead_in: str = ""  # the reply without the plain-text list of its cards
    queries: list[str] = field(default_factory=list)  # the query argument of each search_products call
    alternatives: list[Card] = field(default_factory=list)  # shown under "we don't carry that; related:"
    hygiene: dict[str, bool] = field(default_factory=dict)  # filled by eval.hygiene.check
    goal: str | None = None  # the conversation's goal the assistant tracked at this turn (understanding/goal.py)

    def as_json(self) -> dict:
        return {
            "message": self.message,
            "reply": self.reply,
            "outcome": self.outcome,
            "intent": self.intent,
            "tools": self.tools,
            "cards": [{"product_id": c.product_id, "title": c.title, "price": c.price} for c in self.cards],
            "alternatives": [
                {"product_id": c.product_id, "title": c.title, "price": c.price} for c in self.alternatives
            ],
            "total_ms": self.total_ms,
            "hygiene": {k: v for k, v in self.hygiene.items() if v},
        }


def card_of(p: ProductCard) -> Card:
    return Card(p.product_id, p.title, p.price, p.category, p.brand, p.size, p.price_low, p.price_high)


def fold(message: str, events: list[Event], session: Session) -> TurnResult:
    """The turn's events (in order) as a TurnResult."""
    done = events[-1]
    if not isinstance(done, TurnDone):
        raise ValueError("a turn's events end with TurnDone")
    understood = next((e for e in events if isinstance(e, Understood)), None)
    tools = [e for e in events if isinstance(e, ToolCalled)]
    shown = [e for e in events if isinstance(e, Products)]  # one block, or one per item of a shopping list
    matches = [p for e in shown if not e.alternatives for p in e.items]
    related = [p for e in shown if e.alternatives for p in e.items]
    products = matches + related
    seen = list(session.seen.values()) + list(products)
    prices, ids = facts_of([e.summary for e in tools] + list((done.coupon or {}).values()))
    prices |= {f"{x:.2f}" for p in seen for x in (p.price, p.price_low, p.price_high) if x is not None}
    if understood is not None:  # the shopper's own budget, said back to them ("under $2.00"), is not invented
        slots = understood.understanding.slots
        prices |= {f"{x:.2f}" for x in (slots.budget_max, slots.budget_min) if x is not None}
    ids |= {p.product_id for p in seen}
    return TurnResult(
        message=message,
        reply=done.reply,
        outcome=done.outcome,
        intent=understood.understanding.intent if understood else None,
        goal=understood.understanding.goal if understood else None,
        budget_max=understood.understanding.slots.budget_max if understood else None,
        tools=[e.name for e in tools],
        tool_errors=sum(not e.ok for e in tools),
        cards=[card_of(p) for p in matches],
        alternatives=[card_of(p) for p in related],
        known_prices=prices,
        known_ids=ids,
        repairs=done.repairs,
        total_ms=done.timings_ms.get("total_ms", 0.0),
        refused=next((e.reason for e in events if isinstance(e, Refused)), None),
        lead_in=done.lead_in,
        queries=[str(e.arguments.get("query", "")) for e in tools if e.name == "search_products"],
    )


def run_turn(assistant: Assistant, session: Session, message: str) -> TurnResult:
    """Run one real turn and score its hygiene."""
    result = fold(message, events=list(assistant.turn(session, message)), session=session)
    prices = [c.price for c in result.cards + result.alternatives]
    result.hygiene = check(message, result.reply, prices, result.budget_max, result.known_prices, result.known_ids)
    return result
