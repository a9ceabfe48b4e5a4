"""Structured planning: the validated Understanding of a turn -> the tool calls to run, or the canned answer
to give (a key of ``prompts/messages.toml``). Pure: it reads the session and changes nothing; every effect
(a return requested, a case opened) is a tool call, run and logged by the loop like every other.

Works with the 135M model, which cannot call tools itself. Native planning (``KEFU_PLANNER=native``, for
capable models) is in ``assistant/native.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistant.policy import Treatment
from assistant.session import Session
from assistant.understanding import Understanding

Call = tuple[str, dict[str, Any]]
CONFIRM_RETURN: Call = ("confirm_return", {})


@dataclass(frozen=True)
class Plan:
    calls: list[Call] = field(default_factory=list)
    answer: str | None = None  # a canned reply (messages.toml key) instead of tools


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
        if s.order_id:
            return Plan([("order_status" if u.intent == "order_status" else "start_return", {"order_id": s.order_id})])
        return Plan([("list_my_orders", {"limit": 5})])
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
        return Plan()  # a question about a product shown before: answered from that product
    return Plan([search_call(u, session, treatment, brands)])


def search_call(u: Understanding, session: Session, treatment: Treatment, brands: dict[str, str]) -> Call:
    """The catalogue call for a shopping turn: budget, refinements ("cheaper", "another brand") and brand."""
    s = u.slots
    args: dict[str, Any] = {"k": 5}
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
    if s.brand and s.brand.casefold() in brands:
        args["brand"] = brands[s.brand.casefold()]
    if s.query and (u.intent != "recommendation" or s.refinement != "none" or not treatment.popular_picks):
        return "search_products", {"query": s.query, **args}
    return "recommend_for_me", {k: v for k, v in args.items() if k in ("k", "max_price")}
