"""The dialogue acts of ordinary conversation with the real parts: the real store and index, the real served
model (vLLM with the packaged SmolLM2) and the real intent classifier. Each test is a conversation a shopper
has, checked on the tool calls, the cards and what the shopper reads."""

from __future__ import annotations

import pytest

from assistant.events import Products, ToolCalled, TurnDone, Understood
from assistant.loop import Assistant
from assistant.session import Session
from assistant.sizes import size_of
from kefu.llm.client import LLM
from tests.conftest import real_services

pytestmark = pytest.mark.llm
CUSTOMER = "1111"


@pytest.fixture(scope="module")
def assistant(shop_settings, llm_settings, tmp_path_factory, intent_classifier):
    services = real_services(shop_settings, tmp_path_factory.mktemp("acts") / "records.sqlite")
    return Assistant(services, LLM.from_settings(llm_settings), classifier=intent_classifier)


def say(assistant, session, text):
    events = list(assistant.turn(session, text))
    done = events[-1]
    assert isinstance(done, TurnDone)
    understood = next(e for e in events if isinstance(e, Understood)).understanding
    return understood, [e for e in events if isinstance(e, ToolCalled)], done, events


def test_a_refinement_without_product_words_refines_the_last_search(assistant):
    session = Session(customer_id=None)
    say(assistant, session, "crackers")
    u, tools, done, _ = say(assistant, session, "only the store brand please")
    (search,) = tools
    assert search.name == "search_products" and search.arguments["query"] == "crackers"
    assert search.arguments["brand"] == "Private" and done.products
    assert all(c.brand == "Private" for c in done.products) and "refines-previous-search" in u.trace
    assert done.lead_in.startswith("Store-brand crackers") and '"only store"' not in done.reply
    u, tools, done, _ = say(assistant, session, "anything under $2?")
    assert tools[0].arguments["query"] == "crackers" and tools[0].arguments["max_price"] == 2
    assert done.products and all(c.price <= 2 for c in done.products) and "under $2.00" in done.lead_in


def test_a_bigger_one_is_bigger_than_what_was_shown(assistant):
    session = Session(customer_id=None)
    _, _, first, _ = say(assistant, session, "milk")
    shown = [x[0] for c in first.products if (x := size_of(c.size or c.title)) and x[1] == "oz"]
    _, tools, done, _ = say(assistant, session, "do you have a bigger one?")
    assert tools[0].arguments["min_size"] == pytest.approx(sum(shown) / len(shown), abs=0.01)
    sizes = [size_of(c.size or c.title) for c in done.products]
    assert done.products and all(s is not None and s[0] > sum(shown) / len(shown) for s in sizes)


def test_a_shopping_list_runs_one_search_per_item_grouped(assistant):
    session = Session(customer_id=None)
    u, tools, done, events = say(assistant, session, "I need milk, cheese and a lawn mower")
    assert [t.arguments["query"] for t in tools if t.name == "search_products"] == ["milk", "cheese", "lawn mower"]
    (shown,) = [e for e in events if isinstance(e, Products)]
    assert [(g.item, g.carried) for g in shown.groups] == [("milk", True), ("cheese", True), ("lawn mower", False)]
    assert "Milk:" in done.reply and "Cheese:" in done.reply and 'We don\'t carry "lawn mower".' in done.lead_in
    assert done.outcome == "answered" and session.candidates == done.products  # "the fourth one" still works


def test_a_need_maps_to_the_shelves_and_the_lead_in_names_it(assistant):
    session = Session(customer_id=None)
    u, tools, done, events = say(assistant, session, "we're having some friends over for a party this weekend")
    assert u.slots.need == "party" and len([t for t in tools if t.name == "search_products"]) >= 3
    assert done.lead_in.startswith("For a party") and "weekend" not in done.reply.lower()
    assert done.products and done.outcome == "answered"


def test_questions_about_the_shown_cards_are_answered_from_them(assistant):
    session = Session(customer_id=None)
    _, _, first, _ = say(assistant, session, "cheddar cheese")
    u, tools, done, _ = say(assistant, session, "which one is the cheapest?")
    cheapest = min((c for c in first.products if c.price is not None), key=lambda c: c.price_low or c.price)
    assert tools == [] and done.products == [cheapest] and cheapest.title in done.reply
    assert u.slots.card_question == "cheapest" and session.candidates == first.products  # the list is kept
    _, tools, done, _ = say(assistant, session, "is the second one a store brand?")
    second = first.products[1]
    brand = "is our store brand" if second.brand == "Private" else "is a national brand, not our store brand"
    assert tools == [] and f"That one {brand}: {second.title}" in done.reply
    _, tools, done, _ = say(assistant, session, "does the first one have gluten?")
    assert tools == [] and "doesn't list gluten" in done.reply and first.products[0].title in done.reply


def test_history_questions_go_to_the_orders(assistant):
    session = Session(customer_id=CUSTOMER)
    u, tools, done, _ = say(assistant, session, "what did I buy last time?")
    assert [t.name for t in tools] == ["my_purchases"] and tools[0].arguments == {"which": "last_order"}
    order = assistant.services.orders.order(CUSTOMER, tools[0].data["order_id"])
    assert order is not None and {c.product_id for c in done.products} <= {line.product_id for line in order.lines}
    assert done.lead_in.startswith("Your last order, on ") and "don't carry" not in done.reply
    _, tools, done, _ = say(assistant, session, "what do I usually buy?")
    assert [t.name for t in tools] == ["my_purchases"] and tools[0].arguments == {"which": "usual"}
    assert done.products and all("you bought it in" in c.reason for c in done.products)
    _, tools, _, _ = say(assistant, Session(customer_id=None), "what did I buy last time?")
    assert tools == []  # a guest is asked to sign in


def test_a_need_the_curated_map_lacks_goes_to_the_catalogues_own_types(assistant):
    u, tools, done, _ = say(assistant, Session(customer_id=None), "what should I get for a wedding?")
    searched = [t.arguments["query"] for t in tools if t.name == "search_products"]
    assert u.slots.need == "wedding" and searched == u.slots.items and len(searched) >= 2
    assert searched == assistant.services.catalogue.related("wedding")[: len(searched)]  # the taxonomy's nearest
    assert done.lead_in.startswith("For your wedding") and "don't carry" not in done.lead_in
