"""Typed actions from the pages: a card's "more like this" or "compare", a follow-up chip ("Something cheaper",
"Another brand") sent as data instead of an English sentence. An action skips the understanding step: the loop
builds the turn's ``Understanding`` from it (``understood``) and runs the calls ``plan_action`` maps it to, the
calls the planner makes for the same request said in words.

    {"kind": "similar", "product_id": "p3"}           -> similar_items(product_id)
    {"kind": "compare", "product_ids": ["p3", "p4"]}  -> compare_products(product_ids)
    {"kind": "refine", "refinement": "cheaper"}       -> the last search again with the new constraint
                                                         (cheaper | pricier | other_brand | more: twice the results)
    {"kind": "bought_together", "product_id": "p3"}   -> bought_together(product_id)
    {"kind": "details", "product_id": "p3"}           -> no call: that shown card's facts again

Product ids must be ones a tool returned this session (``session.seen``; for ``details``, a card shown now):
``problem`` says what is wrong otherwise, and the loop answers that instead of running anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from assistant.events import ProductCard
from assistant.planner import Call, search_call
from assistant.session import Session
from assistant.understanding import Intent, Slots, Understanding, stage_and_score

MORE_K = 10  # "more" asks the last search for this many results instead of five

ProductId = Annotated[str, Field(min_length=1, max_length=64)]


def _kind_is_required(schema: dict) -> None:
    schema["required"] = ["kind", *(name for name in schema.get("required", []) if name != "kind")]


class ActionBase(BaseModel):
    """An action is told apart by ``kind``, so a request must send it (the default is for building one in code);
    the JSON schema says so (schemathesis found an action without ``kind`` that the schema allowed)."""

    model_config = ConfigDict(json_schema_extra=_kind_is_required)


class Similar(ActionBase):
    kind: Literal["similar"] = "similar"
    product_id: ProductId


class Compare(ActionBase):
    kind: Literal["compare"] = "compare"
    product_ids: list[ProductId] = Field(min_length=2, max_length=5)


class Refine(ActionBase):
    kind: Literal["refine"] = "refine"
    refinement: Literal["cheaper", "pricier", "other_brand", "more"]


class BoughtTogether(ActionBase):
    kind: Literal["bought_together"] = "bought_together"
    product_id: ProductId


class Details(ActionBase):
    kind: Literal["details"] = "details"
    product_id: ProductId


Action = Annotated[Similar | Compare | Refine | BoughtTogether | Details, Field(discriminator="kind")]
ACTION: TypeAdapter[Action] = TypeAdapter(Action)  # ACTION.validate_python({"kind": "similar", ...})

INTENT_OF: dict[str, Intent] = {
    "similar": "recommendation",
    "compare": "comparison",
    "refine": "product_search",
    "bought_together": "recommendation",
    "details": "product_question",
}
REFINED = {"cheaper": "Something cheaper", "pricier": "Something pricier", "other_brand": "Another brand",
           "more": "Show me more"}  # fmt: skip


def ids_of(action: Action) -> list[str]:
    if isinstance(action, Compare):
        return list(action.product_ids)
    return [action.product_id] if isinstance(action, Similar | BoughtTogether | Details) else []


def problem(action: Action, session: Session) -> str | None:
    """Why this session cannot run ``action`` (shopper-facing), or None. Never repeats the ids sent."""
    ids = ids_of(action)
    if any(pid not in session.seen for pid in ids):
        return "That product is not one shown in this conversation; search again or ask in words."
    if len(set(ids)) < len(ids):
        return "Pick two different products to compare."
    if isinstance(action, Details) and action.product_id not in {c.product_id for c in session.candidates}:
        return "That product is not among the cards shown now; ask about it in words."
    return None


def understood(action: Action, session: Session) -> Understanding:
    """The turn's Understanding, from the action and the last turn's slots (what a refinement refines)."""
    previous = session.slots or Slots()
    shown = [c.product_id for c in session.candidates]
    refs = [shown.index(pid) + 1 for pid in ids_of(action) if pid in shown][:5]
    refinement = action.refinement if isinstance(action, Refine) else "more" if isinstance(action, Similar) else "none"
    slots = previous.model_copy(update={"product_refs": refs, "refinement": refinement})
    if refinement == "other_brand" and previous.brand:
        slots.exclude_brand, slots.brand = previous.brand, None
    intent = INTENT_OF[action.kind]
    stage, purchase = stage_and_score("", intent, slots)
    return Understanding(intent=intent, stage=stage, slots=slots, purchase_intent=purchase)


def plan_action(action: Action, session: Session, brands: Mapping[str, str] | None = None) -> list[Call]:
    """The tool calls for ``action`` (checked with ``problem`` first). ``brands``: casefolded brand -> catalogue
    spelling, as the planner takes it (a refined search keeps only a brand the catalogue has)."""
    if isinstance(action, Similar):
        return [("similar_items", {"product_id": action.product_id})]
    if isinstance(action, BoughtTogether):
        return [("bought_together", {"product_id": action.product_id})]
    if isinstance(action, Compare):
        return [("compare_products", {"product_ids": list(action.product_ids)})]
    if isinstance(action, Details):
        return []  # the loop shows the referenced card again; the lead-in states its facts
    name, args = search_call(understood(action, session), session, dict(brands or {}))
    if action.refinement == "more":
        args = {**args, "k": MORE_K}
    return [(name, args)]


def label(action: Action, shown: Mapping[str, ProductCard]) -> str:
    """What the chat history shows for the action: a short human label ("More like Cheddar cheese, 8 oz").
    ``shown``: product id -> card, e.g. ``session.seen`` or the cards a page shows."""
    titles = [shown[p].title if p in shown else "that product" for p in ids_of(action)]
    if isinstance(action, Similar):
        return f"More like {titles[0]}"
    if isinstance(action, BoughtTogether):
        return f"Bought with {titles[0]}"
    if isinstance(action, Details):
        return f"About {titles[0]}"
    if isinstance(action, Compare):
        return "Compare " + " and ".join(titles)
    return REFINED[action.refinement]
