"""Typed actions from the pages (``assistant/actions.py``): each maps to the planner's tool calls, a bad one is
refused with a clear answer, and a turn driven by one runs no understanding (no classifier, no model reading)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from assistant.actions import (
    ACTION,
    BoughtTogether,
    Compare,
    Details,
    Refine,
    Similar,
    label,
    plan_action,
    problem,
    understood,
)
from assistant.events import ProductCard, Refused, ToolCalled, TurnDone, Understood
from assistant.follow_ups import follow_ups
from assistant.loop import Assistant
from assistant.session import Session
from assistant.understanding import Slots
from kefu.records.conversations import ConversationLog
from kefu.records.db import Records
from tests.fake_llm import ScriptedLLM, reading
from tests.fake_services import PRODUCTS, fake_services

BRANDS = {"national": "National", "private": "Private"}


class CountingPrior:
    """A classifier stub that counts what it was asked."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def predict_top(self, texts, k=3):
        self.texts += texts
        return [[("chitchat", 0.5)] for _ in texts]


def shown_session(query: str | None = "cheese") -> Session:
    """A session whose last turn searched ``query`` and showed the two cheeses (p3 $3.49, p4 $6.99)."""
    session = Session(customer_id="c1", turn=1, slots=Slots(query=query))
    session.remember([p for p in PRODUCTS if p.category == "CHEESE"])
    return session


def test_each_action_maps_to_the_planners_calls():
    session = shown_session()
    before = repr(session)
    assert plan_action(Similar(product_id="p4"), session) == [("similar_items", {"product_id": "p4"})]
    assert plan_action(BoughtTogether(product_id="p3"), session) == [("bought_together", {"product_id": "p3"})]
    assert plan_action(Compare(product_ids=["p3", "p4"]), session) == [
        ("compare_products", {"product_ids": ["p3", "p4"]})
    ]
    assert plan_action(Details(product_id="p4"), session) == []  # that card again, no call
    # refinements apply to the last search (planner.search_call): same query, new constraint
    cheaper = plan_action(Refine(refinement="cheaper"), session)
    assert cheaper == [("search_products", {"query": "cheese", "k": 5, "max_price": 3.48})]
    assert plan_action(Refine(refinement="pricier"), session)[0][1]["min_price"] == 7.0
    assert plan_action(Refine(refinement="other_brand"), session)[0][1]["exclude_brand"] == "National"
    shown = [c.product_id for c in session.candidates]  # "more" makes way for products not shown yet
    more = [("search_products", {"query": "cheese", "k": 10, "exclude_ids": shown})]
    assert plan_action(Refine(refinement="more"), session) == more
    assert repr(session) == before  # planning changes nothing


def test_a_refined_search_keeps_its_brand_and_budget_and_swaps_another_brand():
    session = shown_session()
    session.slots = Slots(query="cheese", brand="Private", budget_max=5)
    (call,) = plan_action(Refine(refinement="cheaper"), session, BRANDS)
    assert call == ("search_products", {"query": "cheese", "k": 5, "max_price": 3.48, "brand": "Private"})
    (call,) = plan_action(Refine(refinement="other_brand"), session, BRANDS)
    assert call[1]["exclude_brand"] == "Private" and "brand" not in call[1]
    # no search before (recommendations): a refinement narrows the shopper's picks
    session = shown_session(query=None)
    assert plan_action(Refine(refinement="cheaper"), session) == [("recommend_for_me", {"k": 5, "max_price": 3.48})]


def test_the_understanding_comes_from_the_action():
    session = shown_session()
    u = understood(Similar(product_id="p4"), session)
    assert u.intent == "recommendation" and u.slots.product_refs == [2] and u.slots.refinement == "more"
    assert u.slots.query == "cheese"  # a later "cheaper" still refines the last search
    u = understood(Compare(product_ids=["p4", "p3"]), session)
    assert u.intent == "comparison" and u.stage == "comparing" and u.slots.product_refs == [2, 1]
    u = understood(Refine(refinement="cheaper"), session)
    assert u.intent == "product_search" and u.slots.refinement == "cheaper" and u.slots.product_refs == []
    assert label(Similar(product_id="p3"), session.seen) == "More like CHEDDAR CHEESE 8 OZ"
    assert label(Compare(product_ids=["p3", "p4"]), session.seen) == "Compare CHEDDAR CHEESE 8 OZ and BRIE CHEESE 7 OZ"
    assert label(Refine(refinement="other_brand"), {}) == "Another brand"


def test_invalid_actions_are_named_not_run():
    session = shown_session()
    unseen = problem(Similar(product_id="p1"), session)  # a real product, but never shown here
    assert unseen and "not one shown" in unseen and "p1" not in unseen
    assert problem(Compare(product_ids=["p3", "p9"]), session)
    assert "two different" in problem(Compare(product_ids=["p3", "p3"]), session)
    assert problem(Details(product_id="p3"), session) is None
    session.candidates = []  # shown earlier, not now: details needs a card on screen
    assert "not among the cards shown now" in problem(Details(product_id="p3"), session)
    assert problem(Refine(refinement="cheaper"), Session(customer_id=None)) is None
    for bad in (
        {"kind": "teleport", "product_id": "p3"},
        {"kind": "compare", "product_ids": ["p3"]},
        {"kind": "refine", "refinement": "bigger"},
        {"kind": "similar"},
        {"kind": "similar", "product_id": ""},
    ):
        with pytest.raises(ValidationError):
            ACTION.validate_python(bad)
    assert ACTION.validate_python({"kind": "similar", "product_id": "p3"}) == Similar(product_id="p3")


def events_of(assistant, session, message="", action=None):
    events = list(assistant.turn(session, message, action))
    assert isinstance(events[-1], TurnDone)
    return events


def test_an_action_turn_runs_no_understanding(tmp_path):
    llm, prior = ScriptedLLM([reading(product="cheese")], ["Cheese!"]), CountingPrior()
    log = ConversationLog(Records(tmp_path / "records.sqlite"))
    assistant = Assistant(fake_services(), llm, classifier=prior, log=log)
    session = Session(customer_id="c1")
    events_of(assistant, session, "cheese")
    assert prior.texts == ["cheese"] and [k for k, _ in llm.calls].count("structured") == 1
    llm.calls.clear()

    events = events_of(assistant, session, action=Similar(product_id="p3"))
    understood_event = next(e for e in events if isinstance(e, Understood))
    assert understood_event.source == "action:similar" and understood_event.understanding.intent == "recommendation"
    assert [(e.name, e.arguments) for e in events if isinstance(e, ToolCalled)] == [
        ("similar_items", {"product_id": "p3"})
    ]
    assert prior.texts == ["cheese"]  # the classifier was not asked again
    assert not any(kind == "structured" for kind, _ in llm.calls)  # nor the model to read the turn
    done = events[-1]
    assert [p.product_id for p in done.products] == ["p4"] and "understand_ms" not in done.timings_ms
    last = log.turns(session.conversation_id)[-1]
    assert last["understanding_source"] == "action:similar" and last["message"] == "More like CHEDDAR CHEESE 8 OZ"
    assert session.history[-2]["content"] == "More like CHEDDAR CHEESE 8 OZ"

    events = events_of(assistant, session, "cheaper please", action=Refine(refinement="cheaper"))
    (search,) = [e for e in events if isinstance(e, ToolCalled)]
    assert search.name == "search_products" and search.arguments["max_price"] == 6.98  # below the shown brie
    assert prior.texts == ["cheese"] and not any(kind == "structured" for kind, _ in llm.calls)


def test_an_invalid_action_gets_an_answer_and_runs_nothing():
    llm, prior = ScriptedLLM(), CountingPrior()
    assistant = Assistant(fake_services(), llm, classifier=prior)
    session = Session(customer_id="c1")
    events = events_of(assistant, session, action=Compare(product_ids=["p1", "p2"]))
    refused, done = events
    assert isinstance(refused, Refused) and refused.reason == "invalid_action" and "not one shown" in done.reply
    assert done.outcome == "refused" and not done.products and not llm.calls and not prior.texts


def test_chips_carry_typed_actions_beside_their_words():
    cards = [ProductCard(product_id="p3", title="CHEDDAR CHEESE 8 OZ", price=3.49, brand="National")]
    chips = follow_ups(TurnDone(conversation_id="c", turn=1, reply="r", products=cards), "product_search")
    assert [c.action for c in chips] == [
        Refine(refinement="cheaper"),
        Refine(refinement="other_brand"),
        Similar(product_id="p3"),
    ]
    assert all(c.message for c in chips)  # the same requests still work in words
    no_match = follow_ups(TurnDone(conversation_id="c", turn=1, reply="r", outcome="no_match"))
    assert all(c.action is None for c in no_match)
