"""Suggested replies for a support agent (two or three, which the agent edits before sending), built from the
evidence of the conversation's last turn: the order its tools looked up (a store row), a return it requested,
the case it opened, the cards it showed (catalogue rows) and a coupon from the customer's campaigns.

Pure functions over typed values. Every fact in a suggestion (an id, a status, a date, a price, a coupon) is
copied from that evidence; the rest is fixed wording. Nothing is invented: with no evidence of a kind, no
suggestion of that kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.events import ProductCard, card_price_text
from assistant.services import Coupon, Order
from assistant.timeline import TurnView

AFTER_SALES_INTENTS = {"order_status", "return_refund", "delivery", "payment", "complaint", "human_handoff"}
MAX_SUGGESTIONS = 3
MAX_CARDS = 3


@dataclass(frozen=True)
class Evidence:
    """What the copilot looked up for the conversation's last turn (``assistant/desk.py`` gathers it)."""

    turn: TurnView | None
    cards: list[ProductCard] = field(default_factory=list)  # the last products shown, as catalogue rows
    order: Order | None = None  # the order the turn was about (store row), or the latest one for after-sales
    order_is_latest: bool = False  # ``order`` is the latest order, not one the shopper named
    coupon: Coupon | None = None
    case_id: str | None = None  # an open case for this conversation
    agent: str = "the support team"


@dataclass(frozen=True)
class Suggestion:
    text: str
    basis: str  # what it was built from, for the agent: "order_status", "cards", "coupon" …


def card_line(card: ProductCard) -> str:
    """A product as an agent inserts it into a reply: its display title and its price."""
    return f"{card.title} — {card_price_text(card)}"


def _day(order: Order) -> str:
    return order.ordered_at.strftime("%Y-%m-%d") if order.ordered_at else ""


def _greeting(e: Evidence) -> Suggestion:
    if e.case_id:
        text = (f"Hi, this is {e.agent} from the support team. I've taken your case {e.case_id} and I'm reading "
                "our conversation now; I'll help you from here.")  # fmt: skip
        return Suggestion(text, "case")
    return Suggestion(f"Hi, this is {e.agent} from the support team. I'm reading our conversation now; "
                      "I'll help you from here.", "greeting")  # fmt: skip


def _order(e: Evidence) -> Suggestion | None:
    o = e.order
    if o is None:
        return None
    day = f" from {_day(o)}" if _day(o) else ""
    which = f"Your latest order, {o.order_id}{day}," if e.order_is_latest else f"Your order {o.order_id}{day}"
    return Suggestion(f"{which} is {o.status}: {o.items} item(s), ${o.total:.2f} in total.", "order")


def _return(e: Evidence) -> Suggestion | None:
    t = e.turn
    if t is None or not t.return_id:
        return None
    order = next((s.data.get("order_id") for s in t.tools if s.name == "confirm_return" and s.ok), None)
    of = f" for order {order}" if order else ""
    return Suggestion(f"Your return {t.return_id}{of} is requested; we'll confirm it once it has been processed.",
                      "return")  # fmt: skip


def _cards(e: Evidence) -> Suggestion | None:
    cards = e.cards[:MAX_CARDS]
    query = e.turn.slots.get("query") if e.turn else None
    no_match = e.turn is not None and e.turn.outcome == "no_match"
    if not cards:
        if no_match and query:
            return Suggestion(f"I'm sorry, we don't carry {query} at the moment.", "no_match")
        return None
    listed = "; ".join(card_line(c) for c in cards)
    if no_match and query:
        return Suggestion(f"We don't carry an exact match for {query}, but these are related: {listed}.", "cards")
    return Suggestion(f"Here are some options from our shop: {listed}.", "cards")


def _coupon(e: Evidence) -> Suggestion | None:
    c = e.coupon
    if c is None:
        return None
    card = next((card for card in e.cards if card.product_id == c.product_id), None)
    if card is None:  # the coupon names a product no card shows: no title or price to quote
        return None
    return Suggestion(f"You also have a coupon for {card.title} (coupon {c.coupon_upc}, campaign {c.campaign_id}).",
                      "coupon")  # fmt: skip


def suggest(e: Evidence) -> list[Suggestion]:
    """Two or three replies, the most useful first: for a handoff or an after-sales turn the case greeting and
    the order or return facts lead; for a shopping turn the cards and the coupon do."""
    after_sales = e.turn is not None and (e.turn.outcome == "handoff" or e.turn.intent in AFTER_SALES_INTENTS)
    facts = [_return(e), _order(e)] if after_sales else [_cards(e), _coupon(e), _order(e)]
    facts += [_cards(e), _coupon(e)] if after_sales else [_return(e)]
    ordered = [_greeting(e), *facts] if after_sales else [*facts, _greeting(e)]
    out: list[Suggestion] = []
    for s in ordered:
        if s is not None and all(s.text != o.text for o in out):
            out.append(s)
    if len(out) < 2:
        out.append(Suggestion("Is there anything else I can help you with?", "follow-up"))
    return out[:MAX_SUGGESTIONS]
