"""The tuned reader's side of the understanding step: its training examples (tune_data), the rules' checks of its
reading (Evidence.with_tuned / accepted), the spine taking the configured fields from it, and the settings that
say when it is served."""

from __future__ import annotations

import json
import random
from pathlib import Path

import duckdb
import pytest

from assistant.understanding import understand
from assistant.understanding.evidence import Evidence, accepted
from assistant.understanding.intent_data import normalize
from assistant.understanding.reading import TurnContext, TurnReading, turn_messages
from assistant.understanding.schema import Slots
from assistant.understanding.tune_data import build, catalogue_phrases, shopper_phrase, typo
from kefu.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DEV = REPO / "eval" / "cases" / "understanding" / "dev.jsonl"
PRODUCTS = ["peanut butter", "potato chips", "laundry detergent", "chicken breast", "white bread", "milk"]


@pytest.fixture(scope="module")
def phrases(demo_store):
    con = duckdb.connect(str(demo_store), read_only=True)
    try:
        return catalogue_phrases(con)
    finally:
        con.close()


def test_catalogue_names_become_shopper_phrases():
    assert shopper_phrase("POTATO CHIPS") == "potato chips"
    assert shopper_phrase("GRAPES WHITE") == "white grapes"  # the catalogue's inverted order, as said
    assert shopper_phrase("FRZN MULTI SERVE ENTREES ALL") is None  # the shop's jargon
    assert shopper_phrase("MISC: HERRING PICKLES HORSER") is None


def test_phrases_come_from_the_real_catalogue(phrases):
    products, food = phrases
    assert len(products) > 300
    assert "potato chips" in products and "potato chips" in food
    assert food < set(products)


def test_examples_are_seeded_labelled_by_construction_and_cover_every_kind(phrases):
    products, food = phrases
    a = build(products, 600, seed=3, food=food)
    b = build(products, 600, seed=3, food=food)
    assert [e.messages() for e in a] == [e.messages() for e in b]
    kinds = {e.kind for e in a}
    assert kinds == {"search", "list", "follow_up", "cards", "compare", "recommend", "need", "history", "order",
                     "public"}  # fmt: skip
    for e in a:
        answer = json.loads(e.messages()[-1]["content"])
        assert TurnReading.model_validate(answer) == e.reading
        if e.reading.order_id:
            assert e.reading.order_id in e.text
        if e.reading.product_refs or e.reading.card_question != "none":
            assert e.context.cards > 0
        if e.reading.refinement != "none":
            assert e.context.last_query
    lists = [e for e in a if e.kind == "list"]
    assert all(len(e.reading.items) >= 2 for e in lists)


def test_no_example_repeats_a_development_turn(phrases):
    products, food = phrases
    held = [json.loads(line)["message"] for line in DEV.read_text().splitlines() if line.strip()]
    made = build(products, 1500, seed=0, exclude=held, food=food)
    assert not {normalize(e.text) for e in made} & {normalize(t) for t in held}
    # and without the exclusion the generator does produce some of them, so the filter is doing work
    free = build(products, 1500, seed=0, food=food)
    assert {normalize(e.text) for e in free} & {normalize(t) for t in held}


def test_a_typo_changes_one_letter_and_keeps_short_words():
    rng = random.Random(1)
    assert typo("milk", rng) == "milk"
    slips = {typo("chicken", rng) for _ in range(30)}
    assert "chicken" not in slips or len(slips) > 1
    assert all(abs(len(s) - len("chicken")) <= 1 for s in slips)


def test_the_prompt_is_short_and_carries_the_context():
    messages = turn_messages("cheaper?", TurnContext(last_query="peanut butter", cards=3))
    assert messages[-1]["content"] == "Shown: 3 products\nLast search: peanut butter\nShopper: cheaper?"
    assert len(messages[0]["content"]) < 80
    assert TurnReading(intent="product_search", items=["milk"]).answer() == (
        '{"intent":"product_search","items":["milk"]}'
    )


def _ev(message: str, **kw) -> Evidence:
    return Evidence(message, vocabulary=frozenset({"chicken", "breast", "peanut", "butter", "milk"}), **kw)


def test_rules_check_each_field_of_the_tuned_reading():
    ev = _ev("chiken breast under $5")
    good = TurnReading(intent="product_search", items=["chicken breast"], budget_max=5)
    assert accepted(ev, good, "items")  # a typo corrected to a catalogue word
    assert accepted(ev, good, "budget")
    invented = TurnReading(intent="product_search", items=["salmon"], budget_max=7)
    assert not accepted(ev, invented, "items")
    assert not accepted(ev, invented, "budget")
    assert accepted(_ev("no more than ten bucks"), TurnReading(intent="product_search", budget_max=10), "budget")
    assert not accepted(_ev("where is order 123456"), TurnReading(intent="order_status", order_id="999"), "order_id")
    assert not accepted(_ev("the third one?"), TurnReading(intent="product_question", product_refs=[3]),
                        "product_refs")  # fmt: skip  # no cards shown
    assert not accepted(_ev("cheaper"), TurnReading(intent="product_search", refinement="cheaper"), "refinement")
    assert not accepted(_ev("party"), TurnReading(intent="recommendation", need="rave"), "need")


def test_the_spine_takes_the_configured_fields_from_the_tuned_model():
    ev = _ev("i need peanut butter n milk")
    reading = TurnReading(intent="product_search", items=["peanut butter", "milk"])
    u = understand(ev.with_tuned(reading, frozenset({"intent", "items"})))
    assert u.named == ["peanut butter", "milk"]
    assert u.readers["items"] == "model" and u.readers["budget"] == "rules"
    # a field it is not given stays with the rules
    u = understand(ev.with_tuned(reading, frozenset({"intent"})))
    assert u.readers["items"] == "rules"


def test_a_rejected_field_falls_back_to_the_rules():
    ev = _ev("peanut butter under $4")
    made_up = TurnReading(intent="product_search", items=["jam"], budget_max=9)
    u = understand(ev.with_tuned(made_up, frozenset({"intent", "items", "budget"})))
    assert u.slots.budget_max == 4 and "jam" not in u.named
    assert u.readers["items"] == "rules" and u.readers["budget"] == "rules"


def test_the_tuned_intent_wins_where_given_and_clears_a_search():
    ev = _ev("my parcel never came", previous=Slots(query="milk", items=["milk"]))
    u = understand(ev.with_tuned(TurnReading(intent="delivery"), frozenset({"intent"})))
    assert u.intent == "delivery" and u.slots.products() == [] and u.readers["intent"] == "model"


def test_settings_serve_the_tuned_model_only_when_asked_and_it_exists(tmp_path):
    assert not Settings(data_dir=tmp_path).reads_tuned  # the packaged model reads by default (README)
    s = Settings(data_dir=tmp_path, reader="auto")
    assert not s.reads_tuned and s.model_dir == s.default_model_dir and s.served_name == s.llm_served_name
    s.tuned_model_dir.mkdir(parents=True)
    (s.tuned_model_dir / "kefu-manifest.json").write_text("{}")
    assert s.reads_tuned and s.model_dir == s.tuned_model_dir and s.served_name == s.llm_tuned_name
    assert not Settings(data_dir=tmp_path, reader="base").reads_tuned
    assert not Settings(data_dir=tmp_path, llm_url="http://gpu:8000/v1", reader="auto").reads_tuned  # external: say so
    assert Settings(data_dir=tmp_path, llm_url="http://gpu:8000/v1", reader="tuned").reads_tuned
