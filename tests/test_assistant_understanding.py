"""The understanding spine over the LLM's reading, deterministic parsers, catalogue words and the classifier prior
(the same cases the old fixed-order merge had; each dialogue act's own rules are tested in
test_understanding_rules.py)."""

import pytest

from assistant.understanding import Evidence, LLMReading, Slots, catalogue_vocabulary, parse_rules, understand
from kefu import store


def read(text, reading, prior, previous, vocabulary=frozenset(), **kw):
    """The spine's reading and the rules that fired, joined ("model-reads-intent+parsed-slots")."""
    u = understand(Evidence(text, reading, [prior] if prior else [], previous=previous, vocabulary=vocabulary, **kw))
    return u, "+".join(u.trace)


def llm(intent="product_search", product="", brand="", max_price=None):
    return LLMReading(
        intent=intent, stage="browsing", product=product, brand=brand, max_price=max_price, purchase_intent=0.5
    )


@pytest.mark.parametrize(
    "text,expected",
    [
        ("cheap gluten free pasta under $3", {"budget_max": 3.0}),
        ("between $2 and 5 dollars", {"budget_min": 2.0, "budget_max": 5.0}),
        ("over 10 please", {"budget_min": 10.0}),
        ("the second one", {"product_refs": [2]}),
        ("compare the first and the last", {"product_refs": [1, -1]}),
        ("where is order #31625220889", {"order_id": "31625220889"}),
        ("something cheaper", {"refinement": "cheaper"}),
        ("a different brand", {"refinement": "other_brand"}),
        ("yes, go ahead", {"confirm": True}),
        ("ritz crackers family size", {}),
    ],
)
def test_parsers(text, expected):
    assert parse_rules(text) == expected


def test_parsers_win_over_the_llm_and_slots_carry_over():
    u, source = read("pasta under $3", llm(product="pasta", max_price=30), None, None)
    assert u.slots.budget_max == 3 and "parsed-slots" in source
    u2, _ = read("something cheaper", llm(product=""), None, u.slots)
    assert u2.slots.query == "pasta" and u2.slots.budget_max == 3 and u2.slots.refinement == "cheaper"
    u3, _ = read("a different brand", llm(), None, Slots(query="milk", brand="Private"))
    assert u3.slots.exclude_brand == "Private" and u3.slots.brand is None


def test_brand_only_when_the_shopper_said_it():
    u, _ = read("some milk", llm(product="milk", brand="Horizon"), None, None)
    assert u.slots.brand is None


def test_catalogue_words_and_budgets_mean_shopping(demo_store):
    with store.connect(demo_store) as con:
        vocabulary = catalogue_vocabulary(con)
    u, source = read("cheese please", llm(intent="chitchat"), None, None, vocabulary)
    assert u.intent == "product_search" and "catalogue-words-mean-shopping" in source
    u, _ = read("something under $5", llm(intent="out_of_scope"), None, None, vocabulary)
    assert u.intent == "product_search"
    u, _ = read("what's the weather in Paris?", llm(intent="out_of_scope"), None, None, vocabulary)
    assert u.intent == "out_of_scope"


def test_classifier_prior():
    # the LLM is down: the classifier decides
    u, source = read("I want my money back", None, ("return_refund", 0.97), None)
    assert u.intent == "return_refund" and u.stage == "post_purchase" and "classifier-reads-intent" in source
    # a confident after-sales prior overrides a shopping reading; an unsure one does not
    u, _ = read("track my package", llm(product="package"), ("order_status", 0.95), None)
    assert u.intent == "order_status"
    u, _ = read("track my package", llm(product="package"), ("order_status", 0.6), None)
    assert u.intent == "order_status"  # the classifier knows after-sales requests (Bitext) from p=0.6
    u, _ = read("track my package", llm(product="package"), ("order_status", 0.55), None)
    assert u.intent == "product_search"
    # the small model's after-sales guess needs the classifier's agreement ("a 55 inch TV" read as account)
    u, source = read("a 55 inch TV", llm(intent="account"), ("out_of_scope", 0.85), None)
    assert u.intent == "product_search" and "after-sales-needs-classifier" in source
    u, _ = read("can I pay with paypal", llm(intent="payment"), ("payment", 0.66), None)
    assert u.intent == "payment"
    # an order id makes it an order question
    u, _ = read("order 31625220889?", llm(product="order"), None, None)
    assert u.intent == "order_status" and u.slots.order_id == "31625220889"


def test_store_brand_words():
    assert parse_rules("store brand crackers")["store_brand"] is True
    u, _ = read("private label milk", llm(product="milk"), None, None)
    assert u.slots.store_brand and u.slots.brand is None


def test_stage_and_purchase_intent_score():
    u, _ = read("crackers", llm(product="crackers"), None, None)
    assert (u.stage, u.purchase_intent) == ("browsing", 0.5)
    u2, _ = read("I'll take the second one, add it to my cart", llm(product=""), None, u.slots)
    assert u2.stage == "ready_to_buy" and u2.purchase_intent > 0.9
    u3, _ = read("where is my order", llm(intent="order_status"), None, None)
    assert u3.stage == "post_purchase" and u3.purchase_intent == 0.1


def test_explicit_words_beat_a_small_models_guess():
    u, _ = read("compare the first and second one", llm(intent="complaint"), None, Slots(query="crackers"))
    assert u.intent == "comparison" and u.slots.product_refs == [1, 2]
    u, _ = read("something cheaper", llm(intent="comparison"), None, Slots(query="crackers"))
    assert u.intent == "product_search" and u.slots.refinement == "cheaper" and u.slots.query == "crackers"
    u, _ = read("recommend me something", llm(intent="chitchat"), None, None)
    assert u.intent == "recommendation"
    # a sure classifier keeps its after-sales intent
    u, _ = read("compare prices on my refund", llm(intent="return_refund"), ("return_refund", 0.97), None)
    assert u.intent == "return_refund"


def test_a_comparison_needs_the_shoppers_words():
    text = "Actually, I'd rather have sweet goods from the baked sweet goods aisle, under $3."
    u, _ = read(text, llm(intent="comparison"), None, None)
    assert u.intent in ("product_search", "recommendation") and u.slots.budget_max == 3  # a search either way
    u, _ = read("compare the first two", llm(intent="comparison"), None, None)
    assert u.intent == "comparison"
