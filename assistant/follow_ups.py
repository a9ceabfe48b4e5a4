"""Follow-ups a shopper can send with one click, derived from the turn that just ended: refine by price, another
brand, similar items after results; a way back to shopping after a decline or a no-match; the next step of an
order question. A chip about the results carries a typed ``action`` (``assistant/actions.py``), which the page
sends straight to the planner; every chip also has the message that says the same in words, phrased so the
loop's own rules read it (``cheaper``, ``another brand``, ordinals), for clients that send text.

The card buttons' requests in words live here too: "more like this" and "compare" name the card by position.
"""

from __future__ import annotations

from pydantic import BaseModel

from assistant.actions import Action, Refine, Similar
from assistant.events import TurnDone

ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]


class FollowUp(BaseModel):
    label: str  # what the chip says
    message: str  # the request in words
    action: Action | None = None  # what the page sends instead: the same request, typed


def ordinal(position: int) -> str:
    """1 -> 'first' (the shopper's way of naming a card; the rules read it back as a reference)."""
    return ORDINALS[position - 1] if 1 <= position <= len(ORDINALS) else f"number {position}"


def more_like(position: int) -> str:
    return f"Show me more like the {ordinal(position)} one"


def compare(positions: list[int]) -> str:
    a, b = positions[:2]
    return f"Compare the {ordinal(a)} and the {ordinal(b)} one"


def follow_ups(done: TurnDone, intent: str | None = None, signed_in: bool = False) -> list[FollowUp]:
    """At most three follow-ups for the turn ``done`` (its outcome, cards and intent)."""
    cards = done.products
    if done.outcome == "answered" and cards:
        out = []
        if any(c.price is not None for c in cards):
            out.append(FollowUp(label="Something cheaper", message="Something cheaper, please",
                                action=Refine(refinement="cheaper")))  # fmt: skip
        if len({c.brand for c in cards if c.brand}) >= 1:
            out.append(FollowUp(label="Another brand", message="Show me another brand",
                                action=Refine(refinement="other_brand")))  # fmt: skip
        out.append(FollowUp(label="More like the first", message=more_like(1),
                            action=Similar(product_id=cards[0].product_id)))  # fmt: skip
        return out[:3]
    if done.outcome == "no_match":
        return [
            FollowUp(label="What's popular?", message="What do you recommend for me?"),
            FollowUp(label="Talk to a person", message="I'd like to talk to a person"),
        ]
    if done.outcome == "declined":
        return [
            FollowUp(label="Find a product", message="Help me find a snack under $5"),
            FollowUp(label="Where is my order?", message="Where is my order?"),
        ]
    if intent in ("order_status", "return_refund") and signed_in:
        return [
            FollowUp(label="My recent orders", message="Show my recent orders"),
            FollowUp(label="Start a return", message="I want to return something"),
        ]
    if done.outcome == "handoff":
        return []
    return [FollowUp(label="Recommend something", message="What do you recommend for me?")]
