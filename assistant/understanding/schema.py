"""The typed result of reading one shopper turn: ``Understanding`` (intent, stage, slots, purchase score).

The one definition of the assistant's intents; the fast classifier, the LLM reading, the planner and the eval
all use ``Intent`` / ``INTENTS`` from here.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

Intent = Literal[
    "product_search", "recommendation", "comparison", "product_question", "order_status", "return_refund",
    "delivery", "payment", "account", "complaint", "human_handoff", "chitchat", "out_of_scope",
]  # fmt: skip
INTENTS: tuple[str, ...] = get_args(Intent)
Stage = Literal["browsing", "comparing", "ready_to_buy", "post_purchase"]
SHOPPING = frozenset({"product_search", "recommendation", "comparison", "product_question"})
AFTER_SALES = frozenset(
    {"order_status", "return_refund", "delivery", "payment", "account", "human_handoff", "complaint"}
)


class Slots(BaseModel):
    """What the turn asks for. Every field is filled by ``combine`` (from the rules, the model or the message)."""

    query: str | None = Field(None, max_length=200, description="Product words to search for, e.g. 'gluten free pasta'")
    brand: str | None = Field(None, max_length=60)
    exclude_brand: str | None = Field(None, max_length=60)
    budget_min: float | None = Field(None, ge=0)
    budget_max: float | None = Field(None, ge=0)
    order_id: str | None = Field(None, max_length=40)
    product_refs: list[int] = Field(default_factory=list, max_length=5, description="1-based positions shown before")
    refinement: Literal["none", "cheaper", "pricier", "other_brand", "more"] = "none"


class Understanding(BaseModel):
    intent: Intent
    stage: Stage = "browsing"
    slots: Slots = Field(default_factory=Slots)
    purchase_intent: float = Field(0.0, ge=0, le=1, description="How likely this shopper buys soon, 0..1")
    confirm: bool = Field(False, description="The shopper says yes/confirms a pending action")
