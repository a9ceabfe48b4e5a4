"""The typed result of reading one shopper turn: ``Understanding`` (intent, stage, slots, purchase-intent score).

The one definition of the reading: the fast classifier, the model's reading, the rule table
(``understanding/spine.py``), the planner and the eval all use ``Intent`` / ``Slots`` from here.
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
Refinement = Literal["none", "cheaper", "pricier", "other_brand", "bigger", "smaller", "more"]
REFINEMENTS: tuple[str, ...] = get_args(Refinement)
# a question about the cards already shown, answered from their facts (no new search)
CardQuestion = Literal[
    "none", "price", "size", "brand", "unit_price", "cheapest", "priciest", "biggest", "smallest", "not_listed",
    "details",
]  # fmt: skip
# the conversation's goal at a turn (decided in understanding/goal.py): dialogue state, kept across turns
Goal = Literal["search", "recommendation", "qa", "meta", "service"]
# a question about the shopper's own purchases: the last order's items, what they usually buy, their orders
History = Literal["none", "last_order", "usual", "orders"]


class Slots(BaseModel):
    """What the turn asks for. Filled by the rule table (from the parsers, the model or the message)."""

    query: str | None = Field(None, max_length=200, description="Product words to search for, e.g. 'gluten free pasta'")
    items: list[str] = Field(
        default_factory=list, max_length=8, description="Product phrases: one for one product, several for a list"
    )
    brand: str | None = Field(None, max_length=60)
    store_brand: bool = Field(False, description="Only the shop's own label")
    name_brand: bool = Field(False, description="Not the shop's own label")
    exclude_brand: str | None = Field(None, max_length=60)
    exclude: list[str] = Field(default_factory=list, max_length=5, description="Words the shopper ruled out")
    budget_min: float | None = Field(None, ge=0)
    budget_max: float | None = Field(None, ge=0)
    order_id: str | None = Field(None, max_length=40)
    product_refs: list[int] = Field(default_factory=list, max_length=5, description="1-based positions shown before")
    refinement: Refinement = "none"
    card_question: CardQuestion = "none"
    asked_fact: str | None = Field(None, max_length=40, description="What a not_listed card question asked about")
    need: str | None = Field(None, max_length=60, description="An occasion or problem, e.g. 'party', 'hay fever'")
    history: History = "none"

    def products(self) -> list[str]:
        """The product phrases to search for: the list's items, else the one query."""
        return list(self.items) if len(self.items) > 1 else ([self.query] if self.query else [])


class Understanding(BaseModel):
    intent: Intent
    stage: Stage = "browsing"
    slots: Slots = Field(default_factory=Slots)
    purchase_intent: float = Field(0.0, ge=0, le=1, description="How likely this shopper buys soon, 0..1")
    confirm: bool = Field(False, description="The shopper says yes/confirms a pending action")
    goal: Goal | None = Field(None, description="The conversation's goal at this turn (understanding/goal.py)")
    named: list[str] = Field(
        default_factory=list, description="The products the shopper named this turn: not carried from the last search "
        "(a refinement), not a need's products ('stuff for a party')"
    )  # fmt: skip
    readers: dict[str, str] = Field(
        default_factory=dict, description="Which reader filled each field: model, classifier or rules"
    )
    trace: list[str] = Field(default_factory=list, description="The rules that decided this reading, in order")
