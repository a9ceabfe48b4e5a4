"""Structured planning: the validated Understanding of a turn -> the tool calls to run, or the canned answer
to give (a key of ``prompts/messages.toml``). Pure: it reads the session and changes nothing; every effect
(a return requested, a case opened) is a tool call, run and logged by the loop like every other.

Works with the 135M model, which cannot call tools itself. Native planning (``KEFU_PLANNER=native``, for
capable models) is in ``assistant/native.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistant.display import is_store_brand
from assistant.policy import Treatment
from assistant.session import Session
from assistant.sizes import size_of
from assistant.understanding import Understanding

Call = tuple[str, dict[str, Any]]
CONFIRM_RETURN: Call = ("confirm_return", {})


PER_ITEM = 3  # cards per item of a shopping list or a need


@dataclass(frozen=True)
class Plan:
    calls: list[Call] = field(default_factory=list)
    answer: str | None = None  # a canned reply (messages.toml key) instead of tools
    about_cards: bool = False  # answered from the cards shown before, with no tool


def plan_turn(
    u: Understanding, session: Session, treatment: Treatment, message: str, flagged: bool, brands: dict[str, str]
) -> Plan:
    """``flagged``: the message looks like prompt injection; ``brands``: casefolded brand -> catalogue spelling.
    A return asked for last turn is confirmed by ``confirm_return``; any other answer drops it (the loop)."""
    s = u.slots
    pending = session.pending_return
    if pending is not None:
        if u.confirm and pending.asked_turn == session.turn - 1:
            return Plan([CONFIRM_RETURN])
        if u.confirm or u.intent == "chitchat":
            return Plan(answer="return_cancelled")
    if flagged and u.intent != "human_handoff":  # no tool on an injection attempt, whoever's data it names
        return Plan(answer="injection")
    if u.intent in ("out_of_scope", "chitchat", "delivery", "payment", "account"):
        return Plan(answer=u.intent)
    if u.intent in ("human_handoff", "complaint"):
        return Plan([("handoff_to_human", {"reason": message[:300], "priority": treatment.handoff_priority})])
    if u.intent in ("order_status", "return_refund"):
        if session.customer_id is None:
            return Plan(answer="sign_in")
        if s.history == "orders" and not s.order_id:
            return Plan([("list_my_orders", {"limit": 5})])
        if s.history != "none" and not s.order_id:
            return Plan([("my_purchases", {"which": s.history})])
        if s.order_id:
            return Plan([("order_status" if u.intent == "order_status" else "start_return", {"order_id": s.order_id})])
        return Plan([("list_my_orders", {"limit": 5})])
    if s.card_question != "none" and session.candidates:
        return Plan(about_cards=True)  # a question about the cards shown: answered from their facts
    refs = session.resolve_refs(s.product_refs)
    if u.intent == "comparison":
        ids = [c.product_id for c in (refs if len(refs) >= 2 else session.candidates[:2])]
        if len(ids) >= 2:
            return Plan([("compare_products", {"product_ids": ids})])
    if refs and s.refinement == "more":  # "more like the first one": products like that card
        return Plan([("similar_items", {"product_id": refs[0].product_id})])
    if refs and s.refinement == "none":
        if u.intent == "recommendation":
            return Plan([("similar_items", {"product_id": refs[0].product_id})])
        return Plan(about_cards=True)  # a question about a product shown before: answered from that product
    if u.intent == "product_question" and not s.products():
        return Plan(answer="which_product")  # a question about "it" with nothing shown or named
    if len(s.products()) > 1 or (s.need and s.items and not s.query):
        k = max(2, min(PER_ITEM, 9 // len(s.items)))  # the page shows nine cards: three items, three each
        per_item = [search_call(u, session, brands, item, k) for item in s.items]
        return Plan(per_item)  # a shopping list, or what a need calls for: one search per item
    return Plan([search_call(u, session, brands)])


def search_call(
    u: Understanding,
    session: Session,
    brands: dict[str, str],
    item: str | None = None,
    k: int = 5,
) -> Call:
    """The catalogue call for a shopping turn (or one ``item`` of a list): budget, refinements ("cheaper",
    "another brand", "bigger"), brand, store brand and words ruled out."""
    s = u.slots
    query = item or s.query
    args: dict[str, Any] = {"k": k}
    if s.budget_max is not None:
        args["max_price"] = s.budget_max
    if s.budget_min is not None:
        args["min_price"] = s.budget_min
    prices = [c.price for c in session.candidates if c.price is not None]
    if s.refinement == "cheaper" and prices:
        args["max_price"] = round(min(prices) - 0.01, 2) if min(prices) > 0.01 else min(prices)
    if s.refinement == "pricier" and prices:
        args["min_price"] = round(max(prices) + 0.01, 2)
    if s.refinement == "other_brand" and session.candidates:
        args["exclude_brand"] = s.exclude_brand or session.candidates[0].brand
    if s.refinement in ("bigger", "smaller") and (sized := _sizes(session)):
        unit, sizes = sized
        args["size_unit"] = unit
        args["categories"] = sorted({c.category for c in session.candidates if c.category})
        args["min_size" if s.refinement == "bigger" else "max_size"] = round(sum(sizes) / len(sizes), 2)  # the mean
    if s.brand and s.brand.casefold() in brands:
        args["brand"] = brands[s.brand.casefold()]
    store = next((b for b in brands.values() if is_store_brand(b)), None)  # the shop's own label ("Private")
    if s.store_brand and store:
        args["brand"] = store
    if s.name_brand and store:
        args["exclude_brand"] = store
    if s.refinement == "more":  # more of the same: what was shown already makes way
        args["exclude_ids"] = [c.product_id for c in session.candidates]
    if s.exclude:
        args["exclude_words"] = list(s.exclude)
    if query:
        return "search_products", {"query": query, **args}
    return "recommend_for_me", {key: v for key, v in args.items() if key in ("k", "max_price")}


def _sizes(session: Session) -> tuple[str, list[float]] | None:
    """The shown cards' sizes in their most common unit (ounces, counts or loads), or None when none is known."""
    parsed = [x for c in session.candidates if (x := size_of(c.size or c.title))]
    if not parsed:
        return None
    units = [unit for _, unit in parsed]
    unit = max(set(units), key=units.count)
    return unit, [amount for amount, u in parsed if u == unit]
