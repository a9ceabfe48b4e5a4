"""Typed events of one dialogue turn. The loop yields them; the UI, the API, the logs and the eval consume them.

Order within a turn: Understood, then (ToolCalled)*, Products?, (TextChunk)*, Repaired*, TurnDone.
A refused turn (too long, rate-limited) yields Refused then TurnDone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from assistant.tool_data import DATA_OF, ToolData
from assistant.understanding import Understanding
from retrieval.reasons import Reason

SHOWN_REASONS = 2  # a card shows at most this many reasons, personal ones first


class ProductCard(BaseModel):
    """A product as shown to the shopper: always a real catalogue row returned by a tool this session."""

    product_id: str
    title: str
    price: float | None
    department: str | None = None
    category: str | None = None
    brand: str | None = None
    size: str | None = None
    reasons: list[Reason] = Field(default_factory=list)  # why it is here: kind, shopper text, rank data apart
    alike: int = 1  # products with this same display title that this card stands for
    price_low: float | None = None  # their price range, when alike > 1
    price_high: float | None = None

    @computed_field
    @property
    def reason(self) -> str:
        """What the card says about why it is here: personal reasons first, at most ``SHOWN_REASONS``."""
        personal = [r for r in self.reasons if r.kind == "personal"]
        chosen = (personal + [r for r in self.reasons if r.kind != "personal"])[:SHOWN_REASONS]
        return "; ".join(r.text for r in chosen)

    @property
    def personal(self) -> bool:
        """Chosen for this shopper from their own history (a personal reason)."""
        return any(r.kind == "personal" for r in self.reasons)


def price_text(price: float | None) -> str:
    """A price as the shopper sees it."""
    return f"${price:.2f}" if price is not None else "price not listed"


def card_price_text(card: ProductCard) -> str:
    """A card's price, with the range of the alike products it stands for."""
    if card.alike > 1 and card.price_low is not None and card.price_high is not None:
        span = price_text(card.price_low) if card.price_low == card.price_high else (
            f"{price_text(card.price_low)}–{price_text(card.price_high)}")  # fmt: skip
        return f"{span} ({card.alike} alike)"
    return price_text(card.price)


class Understood(BaseModel):
    kind: Literal["understood"] = "understood"
    understanding: Understanding
    source: str  # "llm", "llm+rules", "classifier" (LLM down) …
    # what the guardrails flagged ("injection"): for the log and staff code only; never serialised, since the API
    # streams every event to the shopper and a flag would tell an attacker when detection fired
    flags: list[str] = Field(default_factory=list, exclude=True)


class ToolCalled(BaseModel):
    kind: Literal["tool"] = "tool"
    name: str
    arguments: dict[str, Any]
    ok: bool
    product_ids: list[str] = Field(default_factory=list)
    products: list[ProductCard] = Field(default_factory=list)
    summary: str = ""  # what the model sees (or the error text it gets back)
    data: dict[str, Any] = Field(default_factory=dict)  # the tool's typed result as fields (assistant/tool_data.py)
    latency_ms: float = 0.0

    def typed(self) -> ToolData | None:
        """``data`` as the tool's own model (``SearchData``, ``OrderData`` …); None for a failed call."""
        model = DATA_OF.get(self.name)
        return model.model_validate(self.data) if self.ok and model is not None else None


class CardGroup(BaseModel):
    """The cards found for one item of a shopping list (or of what a need calls for)."""

    item: str
    product_ids: list[str] = Field(default_factory=list)
    carried: bool = True  # False: the shop has nothing for this item


class Products(BaseModel):
    kind: Literal["products"] = "products"
    items: list[ProductCard]
    alternatives: bool = False  # the shop does not carry what was asked; these are related products instead
    groups: list[CardGroup] = Field(default_factory=list)  # a list's items, each with its cards (else empty)


class TextChunk(BaseModel):
    kind: Literal["text"] = "text"
    text: str
    listing: bool = False  # the plain-text list of the cards: pages that draw the cards skip it


class Repaired(BaseModel):
    kind: Literal["repair"] = "repair"
    what: str  # e.g. "removed price not from a tool: $9.99"


class Refused(BaseModel):
    kind: Literal["refused"] = "refused"
    reason: Literal["too_long", "rate_limited", "empty", "invalid_action"]  # invalid_action: a page's action
    # named a product this conversation has not shown
    message: str


Outcome = Literal["answered", "no_match", "declined", "handoff", "refused"]


class TurnDone(BaseModel):
    kind: Literal["done"] = "done"
    conversation_id: str
    turn: int
    reply: str
    lead_in: str = ""  # the reply without the plain-text list of its cards (what a page with cards shows)
    # answered; no_match: a shopping turn whose search found nothing to show; declined: outside what the shop
    # assistant does (or an injection attempt); handoff: a case was opened for a person; refused: not read at all
    outcome: Outcome = "answered"
    coupon: dict[str, str] | None = None  # the campaign coupon the reply offered (coupon_upc, campaign_id, product_id)
    products: list[ProductCard] = Field(default_factory=list)
    groups: list[CardGroup] = Field(default_factory=list)  # a list's items, each with its cards (else empty)
    handoff_case: str | None = None
    return_id: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    tokens: dict[str, int] = Field(default_factory=dict)
    repairs: int = 0


Event = Understood | ToolCalled | Products | TextChunk | Repaired | Refused | TurnDone
