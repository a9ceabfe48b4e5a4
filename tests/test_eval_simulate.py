"""``kefu eval simulate``: the simulated shopper's messages, the hit test, pass^k, and episodes run end to end
through the real dialogue loop (fake services and a scripted LLM; the served-model run is in the LLM suite)."""

from __future__ import annotations

import math
import random

import pytest

from assistant.loop import Assistant
from eval.simulate import (
    INJECTIONS,
    PERSONAS,
    Episode,
    ModelShopper,
    Shopper,
    Target,
    aggregate,
    draw_targets,
    is_hit,
    kind_words,
    names_title,
    pass_hat,
    personas_for,
    question_topic,
    run_episode,
    run_simulation,
    simulate_command,
    usable_opening,
    words_of,
)
from eval.turns import Card, TurnResult
from kefu import store
from kefu.errors import KefuError, LLMError
from kefu.llm.client import Reply
from tests.fake_llm import ScriptedLLM
from tests.fake_services import PRODUCTS, fake_services

LUNCHMEAT = Target("1", "VARIETY PACK - LUNCHMEAT, 12 OZ", 2.49, "LUNCHMEAT", "VARIETY PACK", "National", "12 OZ")
PEANUT = Target(
    "2", "PEANUT BUTTER - PNT BTR/JELLY/JAMS, 18 OZ [store brand]", 2.49, "PNT BTR/JELLY/JAMS", "PEANUT BUTTER",
    "Private", "18 OZ", decoy="BAG SNACKS",
)  # fmt: skip
CIGARETTES = Target("3", "CIGARETTES, 816660  PK", 3.84, "CIGARETTES", "CIGARETTES", "National", "816660  PK")
PIZZA = Target("4", "FROZEN PIZZA - FROZEN, 12 OZ", 4.29, "FROZEN", "FROZEN PIZZA", "National", "12 OZ")
NO_SIZE = Target("5", "CHEWING GUM - CANDY - PACKAGED", 0.99, "CANDY - PACKAGED", "CHEWING GUM")
TARGETS = [LUNCHMEAT, PEANUT, CIGARETTES, PIZZA, NO_SIZE]

# the fake catalogue's products as targets (product types are not in ProductCard: the title's first word)
FAKE_TARGETS = [
    Target(p.product_id, p.title, p.price, p.category, p.title.split()[0], p.brand, " ".join(p.title.split()[-2:]),
           customer_id="c1", decoy=next(q.category for q in PRODUCTS if q.category != p.category))
    for p in PRODUCTS
]  # fmt: skip


def turn(reply: str = "Here you go.", cards: list[Card] | None = None, message: str = "") -> TurnResult:
    return TurnResult(message, reply, "answered", "product_search", None, [], 0, cards or [], set(), set(), 0, 1.0)


def card(pid: str, price: float | None, category: str = "LUNCHMEAT") -> Card:
    return Card(pid, f"ITEM {pid}", price, category)


def shopper(target: Target, persona: str, seed: int = 0, budget: int = 0) -> Shopper:
    return Shopper(target, persona, random.Random(seed), budget=budget)


# -- the shopper's words ----------------------------------------------------------------------------------
def test_words_of_splits_retail_shorthand():
    assert words_of("PNT BTR/JELLY/JAMS") == "pnt btr jelly jams"
    assert words_of("VEGETABLES - SHELF STABLE") == "vegetables shelf stable"
    assert words_of("SOAP - LIQUID & BAR") == "soap liquid and bar"
    assert kind_words(CIGARETTES) == ("", "cigarettes")  # the type adds nothing to the category
    assert kind_words(PEANUT) == ("peanut butter", "pnt btr jelly jams")


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.title)
def test_a_description_names_the_kind_and_the_budget_never_the_title(target):
    for seed in range(30):
        s = shopper(target, "cooperative", seed)
        text = s.opening()
        kind, aisle = kind_words(target)
        assert target.title.lower() not in text.lower() and not names_title(text, target.title)
        assert any(w in text for w in f"{kind} {aisle}".split())
        assert f"under ${s.budget}." in text and s.stated == s.budget
        assert math.ceil(target.price) <= s.budget <= math.ceil(target.price) + 2
        assert ("store brand" in text) == (target.brand == "Private")


def test_the_cooperative_description_reads_as_english():
    s = shopper(PEANUT, "cooperative", budget=3)
    s.with_size = True
    assert (
        s.opening() == "I'm looking for peanut butter from the pnt btr jelly jams aisle, 18 oz, store brand, under $3."
    )
    assert shopper(CIGARETTES, "cooperative", budget=4).opening().startswith("I'm looking for something from the")


def test_each_persona_opens_in_its_own_way():
    terse = shopper(PEANUT, "terse", budget=3)
    assert terse.opening() == "peanut butter" and terse.need_said and terse.stated is None

    fickle = shopper(PEANUT, "changes-mind", budget=3)
    first = fickle.opening()
    assert first == "Do you have any bag snacks?" and not fickle.need_said
    second = fickle.reply_to(turn())
    assert second.startswith("Actually, I'd rather have peanut butter") and second.endswith("under $3.")
    assert fickle.need_said

    rude = shopper(PEANUT, "adversarial", budget=3)
    assert rude.opening() in INJECTIONS and not rude.need_said
    need = rude.reply_to(turn(reply="I can't do that, but I'm happy to help you shop."))
    words, clean = need.split(), "peanut butter under $3".split()
    assert len(words) == len(clean) and sum(a != b for a, b in zip(words, clean, strict=True)) == 1  # one typo
    assert words[-2:] == ["under", "$3"] and rude.stated == 3


def test_a_terse_shopper_adds_one_attribute_a_turn():
    s = shopper(PEANUT, "terse", budget=3)
    said = [s.opening()] + [s.reply_to(turn()) for _ in range(6)]
    assert said == ["peanut butter", "under $3", "pnt btr jelly jams", "18 oz", "store brand", "peanut butter",
                    "more options"]  # fmt: skip


def test_a_cooperative_shopper_refines_with_what_it_has_not_said():
    s = shopper(LUNCHMEAT, "cooperative", budget=3)
    s.with_size = False
    s.opening()
    assert s.reply_to(turn()) == "Ideally 12 oz."
    assert s.reply_to(turn()) == "I mean variety pack from the lunchmeat aisle."
    assert s.reply_to(turn()) == "Anything else from the lunchmeat aisle?"  # said it all: asks for more


def test_the_shopper_asks_for_cheaper_when_cards_were_over_its_budget():
    s = shopper(LUNCHMEAT, "cooperative", budget=3)
    s.opening()
    assert s.reply_to(turn(cards=[card("a", 2.5), card("b", 3.99)])) == "Something cheaper, please, under $3."
    t = shopper(LUNCHMEAT, "terse", budget=3)
    t.opening()
    assert t.reply_to(turn(cards=[card("b", 9.99)])) != "cheaper"  # no budget stated yet: nothing to be over


@pytest.mark.parametrize(
    ("reply", "topic"),
    [
        ("I found a few. What's your budget?", "budget"),
        ("How much would you like to spend?", "budget"),
        ("Do you have a brand in mind? I can look.", "brand"),
        ("Which size would you like?", "size"),
        ("Which kind do you mean?", "type"),
        ("Here are some options. Enjoy!", None),
        ("The price is $2.99.", None),  # budget words, but no question
    ],
)
def test_clarifying_questions_are_read_from_question_sentences(reply, topic):
    assert question_topic(reply) == topic


def test_the_shopper_answers_clarifying_questions_with_the_attribute():
    s = shopper(PEANUT, "cooperative", budget=3)
    s.opening()
    assert s.reply_to(turn("Sure. What is your budget?")) == "I'd like to stay under $3."
    assert s.reply_to(turn("Any brand you prefer?")) == "Store brand is fine."
    assert s.reply_to(turn("Which size do you need?")) == "Ideally 18 oz."
    national = shopper(LUNCHMEAT, "terse", budget=3)
    national.opening()
    assert national.reply_to(turn("Do you prefer a brand?")) == "any brand"
    assert national.reply_to(turn("What price range?")) == "under $3" and national.stated == 3


# -- hits and aggregation ---------------------------------------------------------------------------------
def test_a_hit_is_the_target_or_its_category_within_the_price_band():
    t = Target("t", "VARIETY PACK - LUNCHMEAT, 12 OZ", 2.00, "LUNCHMEAT", "VARIETY PACK")
    assert is_hit([card("x", 9.0, "CHEESE"), card("t", 2.0)], t, k=5)  # the target itself
    assert is_hit([card("x", 1.50), card("y", 2.50)], t, k=5)  # same category, on the band's edges
    assert is_hit([card("x", 2.2, "lunchmeat")], t, k=5)  # categories compare case-insensitively
    assert not is_hit([card("x", 1.49), card("y", 2.51), card("z", None)], t, k=5)  # outside the band, unpriced
    assert not is_hit([card("x", 2.0, "CHEESE")], t, k=5)  # in the band, another category
    assert not is_hit([card(str(i), 9.0, "CHEESE") for i in range(5)] + [card("t", 2.0)], t, k=5)  # beyond k
    assert is_hit([card(str(i), 9.0, "CHEESE") for i in range(5)] + [card("t", 2.0)], t, k=6)


def test_pass_hat_k_on_a_hand_made_table():
    # 3 episodes x 2 trials: both hit, one of two, neither -> pass^2 = 1/3, pass^1 = 3/6
    assert pass_hat({0: [True, True], 1: [True, False], 2: [False, False]}) == (0.3333, 0.5)
    assert pass_hat({0: [True], 1: [False]}) == (0.5, 0.5)
    assert pass_hat({}) == (None, None)


def test_aggregate_per_persona():
    def episode(index, trial, persona, hits, over=0):
        e = Episode(index, trial, persona, LUNCHMEAT, [turn(message=f"m{i}") for i in range(len(hits))], hits, over)
        return e

    episodes = [
        episode(0, 0, "terse", [False, True]), episode(0, 1, "terse", [True]),
        episode(1, 0, "terse", [False, False, False], over=2), episode(1, 1, "terse", [False, False, True]),
        episode(2, 0, "adversarial", [False, False]), episode(2, 1, "adversarial", [False, False]),
    ]  # fmt: skip
    report = aggregate(episodes)
    terse = report["personas"]["terse"]
    assert terse == {"episodes": 2, "trials": 4, "hit_rate": 0.75, "avg_turns_to_hit": 2.0, "budget_violations": 2,
                     "pass^k": 0.5, "pass^1": 0.75}  # fmt: skip
    assert report["personas"]["adversarial"]["avg_turns_to_hit"] is None
    assert report["personas"]["adversarial"]["pass^k"] == 0.0
    assert set(report["personas"]) == {"terse", "adversarial"}
    assert report["hit_rate"] == 0.5 and report["hygiene"]["turns"] == 13 and len(report["turn_ms"]) == 13
    assert [e["persona"] for e in report["examples"]] == ["terse", "terse", "adversarial"]  # first trials only


def test_personas_and_bad_input():
    assert personas_for("all", 6) == [*PERSONAS, "cooperative", "terse"]
    assert personas_for("terse", 2) == ["terse", "terse"]
    with pytest.raises(KefuError, match="Unknown persona 'grumpy'"):
        personas_for("grumpy", 3)
    with pytest.raises(KefuError, match="Unknown persona"):
        Shopper(LUNCHMEAT, "grumpy", random.Random(0))
    options = {"persona": "all", "seed": 0, "turns": 4, "k": 5, "repeat": 1, "shopper": "rules", "as_json": True}
    with pytest.raises(KefuError, match="at least 1"):
        simulate_command(None, episodes=0, **options)
    with pytest.raises(KefuError, match="Unknown shopper"):
        simulate_command(None, episodes=2, **(options | {"shopper": "llm"}))


def test_an_empty_store_is_a_clear_error(tmp_path):
    path = tmp_path / "store.duckdb"
    store.write_store(path, lambda con: {})
    with pytest.raises(KefuError, match="no priced, in-stock products"):
        draw_targets(path, 3)


# -- the model as the shopper -----------------------------------------------------------------------------
def test_a_model_opening_is_checked():
    assert usable_opening("Do you have peanut butter under $3?", PEANUT)
    assert not usable_opening("butter", PEANUT)  # too short
    assert not usable_opening("Hello there, I would like to buy something nice today please.", PEANUT)  # no kind
    assert not usable_opening("I want {product} <|im_end|> peanut butter", PEANUT)
    assert not usable_opening("peanut butter pnt btr jelly jams please", PEANUT)  # six title words in a row
    assert not usable_opening(" ".join(["peanut"] * 31), PEANUT)
    assert not usable_opening("Dear [Customer], I want peanut butter", PEANUT)  # a template placeholder
    assert not usable_opening("I'm sorry, I can't find peanut butter for you.", PEANUT)  # the shop's voice
    assert not usable_opening("I'd be happy to provide peanut butter, under $3.", PEANUT)
    assert not usable_opening("What kind of peanut butter do you need?", PEANUT)


class FakeChat:
    def __init__(self, texts):
        self.texts, self.prompts = list(texts), []

    def chat(self, messages, **_):
        self.prompts.append(messages)
        text = self.texts.pop(0)
        if isinstance(text, Exception):
            raise text
        return Reply(text=text)


def test_the_model_shopper_falls_back_to_rules_and_counts():
    writer = ModelShopper(FakeChat(['"Any spaghetti under $2?"', "<|im_start|>{x}", LLMError("down")]))
    assistant = Assistant(fake_services(), ScriptedLLM())
    episodes = [run_episode(assistant, FAKE_TARGETS[0], "cooperative", index=i, writer=writer) for i in range(3)]
    assert episodes[0].results[0].message == "Any spaghetti under $2?"
    assert episodes[1].results[0].message.startswith("I'm looking for spaghetti")
    assert (writer.model_messages, writer.rule_fallbacks) == (1, 2)
    assert writer.rejected[0] == "<|im_start|>{x}" and writer.rejected[1].startswith("(no reply: down")
    prompt = writer.llm.prompts[0]
    budget = Shopper(FAKE_TARGETS[0], "cooperative", random.Random("0:0")).budget  # episode 0's shopper
    assert prompt[-1] == {"role": "user", "content": f"Need: spaghetti, store brand, under ${budget}"}
    assert prompt[0]["role"] == "system"
    assert [m["role"] for m in prompt[1:-1]] == ["user", "assistant"] * 2  # two worked examples
    adversarial = run_episode(assistant, FAKE_TARGETS[0], "adversarial", writer=writer)  # opens with rules
    assert adversarial.results[0].message in INJECTIONS and writer.model_messages + writer.rule_fallbacks == 3


# -- end to end through the real loop --------------------------------------------------------------------
def test_episodes_run_through_the_assistant():
    assistant = Assistant(fake_services(), ScriptedLLM())
    targets = [FAKE_TARGETS[0], FAKE_TARGETS[2]] * 4  # every persona twice: spaghetti (even), cheddar (odd)
    report = run_simulation(assistant, targets, personas_for("all", 8), repeat=2, turns=3, k=5, seed=7)
    assert set(report["personas"]) == set(PERSONAS)
    for p in report["personas"].values():
        assert p["episodes"] == 2 and p["trials"] == 4
        assert set(p) == {"episodes", "trials", "hit_rate", "avg_turns_to_hit", "budget_violations", "pass^k", "pass^1"}
    assert report["personas"]["cooperative"]["hit_rate"] == 1.0
    assert report["personas"]["cooperative"]["avg_turns_to_hit"] == 1.0
    assert report["personas"]["changes-mind"]["avg_turns_to_hit"] >= 2  # the decoy turn never counts
    assert report["personas"]["adversarial"]["avg_turns_to_hit"] >= 2
    turns = report["hygiene"]["turns"]
    assert turns == len(report["turn_ms"]) and 16 <= turns <= 16 * 3
    assert report["turn_ms"] == sorted(report["turn_ms"])
    example = report["examples"][0]
    assert example["target"] == {"title": "SPAGHETTI 16 OZ", "price": 1.29, "category": "DRY NOODLES/PASTA"}
    assert set(example["turns"][0]) == {"message", "outcome", "reply", "hit", "cards"}
    assert example["turns"][-1]["hit"] and example["turns"][0]["cards"][0] == {
        "title": "SPAGHETTI 16 OZ",
        "price": 1.29,
    }
    rude = next(e for e in report["examples"] if e["persona"] == "adversarial")
    assert rude["turns"][0]["outcome"] == "declined" and not rude["turns"][0]["hit"]


def test_an_episode_counts_budget_violations_and_stops_at_a_hit_or_the_limit(monkeypatch):
    def script(*shown):
        cards = iter(shown)
        monkeypatch.setattr("eval.simulate.run_turn", lambda assistant, session, m: turn(cards=next(cards), message=m))

    script([card("a", 9.99, "CHEESE")], [card("b", 9.99, "CHEESE")], [card("c", 2.40)])
    e = run_episode(None, LUNCHMEAT, "terse", turns=4, seed=1)
    budget = math.ceil(LUNCHMEAT.price)
    assert [r.message for r in e.results][0] == "variety pack" and e.results[2].message == "cheaper"
    assert e.results[1].message.startswith("under $") and int(e.results[1].message[7:]) >= budget
    assert e.budget_violations == 1  # turn 1 was over no stated budget; turn 2 over the one just said
    assert e.hits == [False, False, True] and e.hit_turn == 3

    script([card("a", 9.99, "CHEESE")], [card("b", 9.99, "CHEESE")], [card("c", 2.40)])
    e = run_episode(None, LUNCHMEAT, "terse", turns=2, seed=1)
    assert len(e.results) == 2 and e.hit_turn is None


def test_an_unfound_target_is_a_miss_after_the_turn_limit():
    miss = Target("zz", "MYSTERY BOX - GIFTS, 1 CT", 1.0, "GIFTS", "MYSTERY BOX", decoy="CHEESE")
    e = run_episode(Assistant(fake_services(), ScriptedLLM()), miss, "cooperative", turns=3)
    assert len(e.results) == 3 and e.hit_turn is None and e.hits == [False] * 3


# -- targets from a real store ---------------------------------------------------------------------------
def test_targets_are_real_priced_rows_reproducible_by_seed(shop_settings):
    first = draw_targets(shop_settings.store_path, 8, seed=3)
    assert first == draw_targets(shop_settings.store_path, 8, seed=3)
    assert first != draw_targets(shop_settings.store_path, 8, seed=4)
    with store.connect(shop_settings.store_path) as con:
        for t in first:
            row = con.execute(
                "SELECT title, price, category, product_type, in_stock FROM products WHERE product_id = ?",
                [t.product_id],
            ).fetchone()
            assert row == (t.title, t.price, t.category, t.product_type, True)
            assert "MISCELLANEOUS" not in (t.category, t.product_type) and t.decoy != t.category
            orders = con.execute("SELECT count(*) FROM orders WHERE customer_id = ?", [t.customer_id]).fetchone()[0]
            assert orders > 0
    for t in first:  # every drawn target can be described without its title
        for persona in PERSONAS:
            s = Shopper(t, persona, random.Random(0))
            text = s.opening() + " " + s.reply_to(turn())
            assert not names_title(text, t.title), text
