"""The copilot's logic below the page: the per-turn timeline from live events and from the log, suggested
replies built only from evidence, the conversation list's filters, the customer card, the handoff queue and
taking a case. Real typed events (the loop with in-memory shop fakes and a scripted model) and a real records
database; the page itself is tested in test_ui_copilot.py."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from assistant.desk import NO_PROFILES, NO_RECORDS, Desk, list_query
from assistant.events import ProductCard
from assistant.loop import Assistant
from assistant.services import Coupon, Order
from assistant.suggest import Evidence, card_line, suggest
from assistant.timeline import TurnView, case_view
from kefu.errors import CaseError
from kefu.records.cases import CaseBook
from kefu.records.conversations import ConversationLog
from kefu.records.db import Records
from tests.fake_llm import ScriptedLLM, reading
from tests.fake_services import PRODUCTS, fake_services
from ui.copilot import turn_html
from ui.hub import Hub


@pytest.fixture
def records(records_location):
    """A real records database, on SQLite and on PostgreSQL."""
    return Records(records_location)


@pytest.fixture
def shop(records):
    """A customer's three turns (cheese, an order, a person) through the hub, logged in a real records DB."""
    log, cases = ConversationLog(records), CaseBook(records)
    llm = ScriptedLLM([reading(product="cheese", max_price=5), reading("order_status"), reading("human_handoff")])
    assistant = Assistant(fake_services(cases=cases), llm, log=log)
    hub = Hub()
    conversation = hub.open(None, "c1")
    for text in ["cheese under $5", "where is order 40000000001?", "let me talk to a person"]:
        list(hub.turn(assistant, conversation, text))
    return Desk(assistant.services, log, cases), hub, conversation


def test_live_and_logged_timelines_agree_on_what_was_done(shop):
    desk, _, conversation = shop
    live = desk.timeline(conversation.id, conversation)
    logged = desk.timeline(conversation.id)
    assert [t.intent for t in live] == ["product_search", "order_status", "human_handoff"]
    assert [t.outcome for t in live] == ["answered", "answered", "handoff"]
    for a, b in zip(live, logged, strict=True):
        assert (a.turn, a.message, a.intent, a.outcome, a.slots) == (b.turn, b.message, b.intent, b.outcome, b.slots)
        assert [(s.name, s.arguments, s.ok) for s in a.tools] == [(s.name, s.arguments, s.ok) for s in b.tools]
        assert a.product_ids == b.product_ids and a.live and not b.live
    assert live[0].slots == {"query": "cheese", "items": ["cheese"], "budget_max": 5.0}
    assert [t.trace for t in live] == [t.trace for t in logged] and "parsed-slots" in live[0].trace  # rules logged
    assert "<code>parsed-slots</code>" in turn_html(live[0])
    assert live[0].tools[0].name == "search_products" and live[0].cards[0].title == "CHEDDAR CHEESE 8 OZ"
    assert live[1].order_id() == "40000000001" and live[1].tools[0].data["status"] == "delivered"
    assert live[2].handoff_case == logged[2].handoff_case and live[2].handoff_case.startswith("CASE-")
    assert [c.title for c in logged[0].cards] == ["CHEDDAR CHEESE 8 OZ"]  # looked up in the catalogue
    assert live[0].tools[0].brief() == "1 product(s)"
    assert live[1].tools[0].brief() == logged[1].tools[0].brief() == "Order 40000000001 placed 2018-01-02: delivered."


def test_suggestions_quote_only_the_evidence(shop):
    desk, _, conversation = shop
    turns = desk.timeline(conversation.id, conversation)
    suggestions, cards = desk.suggestions(conversation.id, turns, "c1", "Dana")
    texts = [s.text for s in suggestions]
    assert 2 <= len(texts) <= 3
    case = turns[-1].handoff_case
    assert case in texts[0] and "Dana" in texts[0]  # a handoff: the case greeting leads
    order = next(t for t in texts if "40000000001" in t)  # the order the shopper named, as the store has it
    assert "delivered" in order and "$4.78" in order and "2018-01-02" in order
    assert [c.product_id for c in cards] == ["p3"]  # the last cards shown, to insert
    prices = {"$4.78", "$3.49"}
    for text in texts:
        assert set(re.findall(r"\$\d+\.\d\d", text)) <= prices


def test_cards_coupon_and_no_match_suggestions():
    cheddar, brie = PRODUCTS[2], PRODUCTS[3]
    shopping = TurnView(turn=1, intent="product_search", slots={"query": "cheese"}, product_ids=["p3", "p4"])
    texts = [s.text for s in suggest(Evidence(shopping, [cheddar, brie], coupon=Coupon("C-9", "K-2", "p4")))]
    assert texts[0] == f"Here are some options from our shop: {card_line(cheddar)}; {card_line(brie)}."
    assert "coupon C-9" in texts[1] and "BRIE CHEESE 7 OZ" in texts[1] and "campaign K-2" in texts[1]
    # a coupon for a product no card shows has no title to quote: no coupon suggestion
    assert not any("coupon" in s.text for s in suggest(Evidence(shopping, [cheddar], coupon=Coupon("C", "K", "p9"))))
    missing = TurnView(turn=2, intent="product_search", outcome="no_match", slots={"query": "caviar"})
    texts = [s.text for s in suggest(Evidence(missing))]
    assert texts[0] == "I'm sorry, we don't carry caviar at the moment." and len(texts) >= 2
    assert not any("$" in t for t in texts)


def test_the_latest_order_for_an_after_sales_turn_without_an_id():
    order = Order("40000000009", datetime(2018, 3, 4), "shipped", 3, 12.5)
    turn = TurnView(turn=1, intent="delivery")
    texts = [s.text for s in suggest(Evidence(turn, order=order, order_is_latest=True, agent="Sam"))]
    assert texts[0].startswith("Hi, this is Sam")
    assert texts[1] == "Your latest order, 40000000009 from 2018-03-04, is shipped: 3 item(s), $12.50 in total."


def test_filters_pick_handoffs_no_matches_and_thumbs_down(shop, records):
    desk, hub, conversation = shop
    llm = ScriptedLLM([reading(product="caviar")])
    other = hub.open(None, None)
    list(hub.turn(Assistant(desk.services, llm, log=desk.log), other, "caviar"))
    desk.log.feedback(other.id, 1, -1, "not helpful")
    live = {c.id for c in hub.live()}

    def listed(show: str, live_ids=live) -> list[tuple[str, bool]]:
        return [(i.conversation_id, i.live) for i in desk.conversations(live_ids, list_query(show))[0]]

    assert listed("all") == [(other.id, True), (conversation.id, True)]  # the newest shopper message first
    assert listed("handoff") == [(conversation.id, True)]
    assert listed("no_match") == [(other.id, True)]
    assert listed("thumbs_down") == [(other.id, True)]
    # after the server restarts: from the log, no longer live
    assert listed("all", set()) == [(other.id, False), (conversation.id, False)]
    assert desk.timeline(other.id)[0].rating == -1


def test_the_queue_shows_the_summary_and_taking_marks_the_case(shop):
    desk, _, conversation = shop
    (case,) = desk.queue()
    assert case.waiting_s is not None and case.waiting_s >= 0
    assert case.status == "open" and case.conversation_id == conversation.id and case.customer_id == "c1"
    assert case.intents == ["product_search", "order_status"] and case.items_shown == ["p3"]
    assert any(t.startswith("search_products(") for t in case.tried)
    taken = desk.take(case.case_id, "Dana")
    assert taken.status == "taken" and taken.taken_by == "Dana" and taken.taken_at
    assert desk.take(case.case_id, "Lee").taken_by == "Dana"  # the first taker keeps it
    assert desk.queue()[0].taken_by == "Dana"
    with pytest.raises(CaseError, match="no case CASE-NONE"):
        desk.take("CASE-NONE", "Dana")


def test_the_customer_card_says_what_is_missing(shop):
    desk, _, _ = shop
    card = desk.customer("c1")
    assert card.orders[0]["order_id"] == "40000000001" and card.orders[0]["status"] == "delivered"
    assert card.segment is None and NO_PROFILES in card.notes
    assert "guest" in desk.customer(None).notes[0].lower()


def test_an_older_records_database_migrates_and_keeps_its_cases(records_location):
    old = Records(records_location, upto=4)
    with old.transaction() as tx:
        tx.execute("INSERT INTO cases VALUES ('CASE-OLD', '2026-01-01', 'conv', 'c1', 'high', 'help', '{}', 'open')")
    old.close()
    book = CaseBook(Records(records_location))
    assert case_view(book.rows("cases")[0]).taken_by is None
    assert book.take("CASE-OLD", "Dana")["status"] == "taken"


def test_without_an_assistant_the_desk_names_what_to_run(settings):
    desk = Desk.open(settings, None, "No product index; run `kefu index`.")
    assert any("kefu index" in n for n in desk.notes) and NO_RECORDS in desk.notes and NO_PROFILES in desk.notes
    items, page = desk.conversations(set(), list_query())
    assert items == [] and page.total == 0 and desk.queue() == []
    assert desk.customer("c1").notes == [NO_PROFILES]


def test_card_line_is_title_and_price():
    card = ProductCard(product_id="x", title="OAT MILK 64 OZ", price=3.5)
    assert card_line(card) == "OAT MILK 64 OZ — $3.50"


def test_without_cards_shown_the_agent_may_insert_the_customers_picks(shop):
    desk, _, conversation = shop
    turns = [t for t in desk.timeline(conversation.id, conversation) if not (t.cards or t.product_ids)]
    _, cards = desk.suggestions(conversation.id, turns, "c1", "Dana")
    assert cards and cards == desk.services.catalogue.recommend("c1", 4, None).products
    assert desk.suggestions(conversation.id, turns, None, "Dana")[1] == []
