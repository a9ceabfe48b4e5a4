"""``kefu eval cases``, ``dialogues`` and ``logs``: expectation logic on hand-made turns, a case file with a
known pass/fail mix through the real loop (in-memory services, scripted model), and each command end to end
against the real served model, store and index."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.loop import Assistant
from eval.cases import Expect, ShownFact, load_cases, run_cases, size_of
from eval.cases import failures as failures_of
from eval.dialogues import goal_of, load_dialogues
from eval.turns import Card, TurnResult
from kefu.errors import KefuError
from tests.fake_llm import ScriptedLLM, reading
from tests.fake_services import fake_services
from ui.cli import app


def turn(**kw) -> TurnResult:
    base = dict(message="m", reply="Here you go.", outcome="answered", intent="product_search", budget_max=None,
                tools=["search_products"], tool_errors=0, cards=[], known_prices=set(), known_ids=set(), repairs=0,
                total_ms=10.0)  # fmt: skip
    return TurnResult(**{**base, **kw})


CHEESE = Card("p3", "CHEDDAR CHEESE 8 OZ", 3.49, "CHEESE")
PASTA = Card("p1", "SPAGHETTI 16 OZ", 1.29, "DRY NOODLES/PASTA")


def test_each_expectation_passes_and_fails_on_hand_made_turns():
    shown = turn(cards=[PASTA, CHEESE])
    assert failures_of(Expect(products="some", category_any=["pasta"], max_price=4), shown) == []
    assert failures_of(Expect(products="none"), shown) == ["expected no products, showed 2"]
    assert failures_of(Expect(max_price=2), shown)[0].startswith("cards over $2")
    assert failures_of(Expect(category_any=["CHEESE"]), turn(cards=[PASTA] * 3 + [CHEESE]))  # only the first 3
    assert failures_of(Expect(max_price=5), turn(cards=[Card("x", "X", None, "C")]))  # unpriced fails a budget
    assert failures_of(Expect(intent_any=["out_of_scope"]), shown) == [
        "intent 'product_search', expected one of ['out_of_scope']"
    ]
    assert failures_of(Expect(tool_none=["search_products"]), shown)
    assert not failures_of(Expect(tool_any=["search_products", "x"]), shown)
    assert failures_of(Expect(outcome="no_match"), shown) == ["outcome 'answered', expected 'no_match'"]
    assert not failures_of(Expect(reply_contains_any=["HERE"], reply_excludes=["discount"]), shown)
    assert failures_of(Expect(reply_excludes=["you go"]), shown) == ["reply contains ['you go']"]


PB = [Card("b1", "PEANUT BUTTER 18 OZ", 2.39, "PNT BTR/JELLY/JAMS", "National", "18 OZ"),
      Card("b2", "PEANUT BUTTER 28 OZ [store brand]", 3.09, "PNT BTR/JELLY/JAMS", "Private", "28 OZ"),
      Card("b3", "PEANUT BUTTER 16 OZ", 2.29, "PNT BTR/JELLY/JAMS", "National", None, 1.99, 2.59)]  # fmt: skip
STORE_PB = [Card("b4", "PEANUT BUTTER 17 OZ [store brand]", 1.12, "PNT BTR/JELLY/JAMS", "Private", "17 OZ"),
            Card("b5", "PEANUT BUTTER 40 OZ", 3.99, "PNT BTR/JELLY/JAMS", "Private", "40 OZ")]  # fmt: skip


def test_card_expectations_category_all_each_and_brands():
    assert not failures_of(Expect(category_all=["pnt btr"], brand_all="private"), turn(cards=STORE_PB))
    assert failures_of(Expect(category_all=["pnt btr"]), turn(cards=STORE_PB + [CHEESE])) == [
        "cards outside ['pnt btr']: ['CHEESE']"
    ]
    assert failures_of(Expect(brand_all="Private"), turn(cards=PB)) == [
        "cards not of brand 'Private': ['National', 'National']"
    ]
    assert failures_of(Expect(brand_none=["National"]), turn(cards=PB))[0].startswith("cards of brand ['National'")
    assert not failures_of(Expect(brand_none=["National"]), turn(cards=STORE_PB))
    listed = turn(cards=[PASTA, CHEESE])
    assert not failures_of(Expect(category_each=["pasta", "eggs|cheese"]), listed)
    assert failures_of(Expect(category_each=["pasta", "eggs", "cheese"]), listed)[0].startswith("no card of ['eggs']")


def test_tool_count_queries_and_lead_in():
    three = turn(tools=["search_products"] * 3, queries=["milk", "eggs", "bread"])
    assert not failures_of(Expect(tool_count={"search_products": 3}, query_contains_any=["EGGS"]), three)
    assert failures_of(Expect(tool_count={"search_products": 4}), three) == [
        f"tools {three.tools}, expected at least {{'search_products': 4}}"
    ]
    assert failures_of(Expect(query_contains_any=["coffee"]), three)
    assert failures_of(Expect(tool_count={"list_my_orders": 1}), three)
    said = turn(reply="Here are 3 matches for noodles.\n\n1. ...", lead_in="Here are 3 matches for noodles.")
    assert not failures_of(Expect(lead_in_contains_any=["noodle"], lead_in_excludes=["tonight"]), said)
    assert failures_of(Expect(lead_in_excludes=["NOODLES"]), said)
    assert failures_of(Expect(lead_in_contains_any=["lasagna"]), said)
    assert failures_of(Expect(reply_contains_all=["noodles", "tv"]), said) == ["reply lacks ['tv']"]
    cheapest = turn(cards=[PASTA, CHEESE], lead_in=f"The cheapest is {PASTA.title} at $1.29.")
    assert not failures_of(Expect(lead_in_category_any=["pasta"]), cheapest)
    assert failures_of(Expect(lead_in_category_any=["cheese"]), cheapest) == [
        "lead-in names ['SPAGHETTI 16 OZ'], not of ['cheese']"
    ]
    assert not failures_of(Expect(lead_in_category_any=["cheese"]), turn(cards=[PASTA], lead_in="Pasta:"))


def test_sizes_are_read_in_ounces_or_counts():
    assert size_of("18 OZ") == ("oz", 18) and size_of("1 LB") == ("oz", 16) and size_of("12 CT") == ("ct", 12)
    assert size_of("1/2 GAL") == ("oz", 64) and size_of("GAL") == ("oz", 128) and size_of("2/40 OZ") == ("oz", 80)
    assert size_of("32 LOADS") == size_of("32 LD") == ("loads", 32) and size_of(None) is None and size_of("CTN") is None


def test_expectations_against_the_cards_shown_before():
    store = turn(cards=STORE_PB)
    assert not failures_of(Expect(brand_not_shown=True, cards_new=True), store, PB[:1])
    assert not failures_of(Expect(price_vs_shown="lower"), turn(cards=STORE_PB[:1]), PB)
    assert failures_of(Expect(brand_not_shown=True), store, PB[1:]) == [
        "cards of the shown brand 'Private': ['PEANUT BUTTER 17 OZ [store brand]', 'PEANUT BUTTER 40 OZ']"
    ]
    assert failures_of(Expect(cards_new=True), turn(cards=PB[:2]), PB) == [
        "cards shown again: ['PEANUT BUTTER 18 OZ', 'PEANUT BUTTER 28 OZ [store brand]']"
    ]
    assert failures_of(Expect(price_vs_shown="lower"), store, PB)  # $3.99 is dearer than every shown card
    assert not failures_of(Expect(price_vs_shown="higher"), turn(cards=[PB[1]]), PB[::2])
    assert not failures_of(Expect(size_vs_shown="bigger"), turn(cards=[STORE_PB[1]]), PB)
    assert failures_of(Expect(size_vs_shown="smaller"), turn(cards=[STORE_PB[1]]), PB)
    assert failures_of(Expect(size_vs_shown="bigger"), turn(cards=[PB[2]]), PB)  # no size on the card
    assert failures_of(Expect(cards_new=True), store) == ["no cards were shown before this turn"]


@pytest.mark.parametrize(
    "fact,reply,ok",
    [
        (ShownFact(fact="cheapest"), "The cheapest is the 16 oz one at $1.99.", True),  # b3's range starts at $1.99
        (ShownFact(fact="cheapest"), "The cheapest is $2.29.", False),
        (ShownFact(fact="price", card=2), "The second one costs $3.09.", True),
        (ShownFact(fact="price", card=1), "The second one costs $3.09.", False),
        (ShownFact(fact="price", card=4), "It costs $3.09.", False),  # only three were shown
        (ShownFact(fact="size", card=1), "It's an 18oz jar.", True),
        (ShownFact(fact="size", card=2), "It's an 18 oz jar.", False),
        (ShownFact(fact="size", card=3), "The catalogue doesn't list its size.", True),
        (ShownFact(fact="brand", card=2), "Yes, it's our store brand.", True),
        (ShownFact(fact="brand", card=1), "Yes, it's our store brand.", False),
        (ShownFact(fact="brand", card=1), "No, it's not a store brand; it's a national brand.", True),
        (ShownFact(fact="brand", card=2), "No, that one isn't a store brand.", False),
    ],
)
def test_shown_fact_is_checked_against_the_shown_cards(fact, reply, ok):
    assert (failures_of(Expect(shown_fact=fact), turn(reply=reply, tools=[]), PB) == []) is ok


def test_a_shown_fact_names_its_card_unless_it_is_the_cheapest():
    with pytest.raises(ValueError, match="name the card"):
        ShownFact(fact="price")
    with pytest.raises(ValueError, match="name the card"):
        ShownFact(fact="cheapest", card=1)


def test_a_turn_folds_every_block_of_cards_its_lead_in_and_its_queries():
    from assistant.events import ProductCard, Products, ToolCalled, TurnDone
    from assistant.session import Session
    from eval.turns import fold

    milk = ProductCard(product_id="m1", title="MILK 1 GA", price=2.69, category="FLUID MILK PRODUCTS", size="1 GA")
    eggs = ProductCard(product_id="e1", title="EGGS 12 CT", price=1.79, category="EGGS", brand="Private")
    events = [ToolCalled(name="search_products", arguments={"query": "milk"}, ok=True),
              ToolCalled(name="search_products", arguments={"query": "eggs"}, ok=True),
              Products(items=[milk]), Products(items=[eggs]),
              TurnDone(conversation_id="c", turn=1, reply="Milk, eggs:\n\n1. MILK", lead_in="Milk, eggs:")]  # fmt: skip
    result = fold("milk and eggs", events, Session(customer_id=None))
    assert [c.product_id for c in result.cards] == ["m1", "e1"] and result.alternatives == []
    assert (result.cards[0].size, result.cards[1].brand) == ("1 GA", "Private")
    assert (result.queries, result.lead_in) == (["milk", "eggs"], "Milk, eggs:")


def test_the_cards_shown_before_carry_over_a_turn_that_shows_none(tmp_path):
    again = {"id": "again", "turns": [{"message": "cheese"}, {"message": "hi"},
                                      {"message": "more cheese", "expect": {"cards_new": True}}]}  # fmt: skip
    llm = ScriptedLLM([reading(product="cheese"), reading("chitchat"), reading(product="cheese")])
    report = run_cases(Assistant(fake_services(), llm), load_cases(write(tmp_path / "c.jsonl", [again])))
    assert [(f["turn"], f["reasons"][0][:17]) for f in report["failures"]] == [(3, "cards shown again")]


def test_a_question_about_the_shown_cards_keeps_them_for_the_next_one(tmp_path):
    def asks(card):
        return {"message": f"how much is number {card}?", "expect": {"shown_fact": {"fact": "price", "card": card}}}

    prices = {"id": "prices", "turns": [{"message": "cheese"}, asks(1), asks(2)]}
    llm = ScriptedLLM([reading(product="cheese"), reading("product_question"), reading("product_question")])
    report = run_cases(Assistant(fake_services(), llm), load_cases(write(tmp_path / "c.jsonl", [prices])))
    assert not [r for f in report["failures"] for r in f["reasons"] if "cards were shown" in r]


def write(path, cases):
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


MIX = [  # passes: cheese, sign-in; fails: the budget one (nothing under $1) and the wrong-outcome one
    {"id": "cheese", "kind": "carried", "turns": [{"message": "cheese", "expect": {"category_any": ["cheese"]}}]},
    {"id": "cheap-cheese", "kind": "carried",
     "turns": [{"message": "cheese under $1", "expect": {"products": "some", "max_price": 1}}]},
    {"id": "weather", "kind": "out_of_scope",
     "turns": [{"message": "weather in Paris?", "expect": {"outcome": "declined", "products": "none"}}]},
    {"id": "orders", "kind": "after_sales",
     "turns": [{"message": "where is my order?", "expect": {"reply_contains_any": ["sign in"]}}]},
    {"id": "wrong", "kind": "after_sales",
     "turns": [{"message": "where is my order?", "expect": {"outcome": "handoff"}}]},
]  # fmt: skip


def test_a_case_file_with_a_known_pass_fail_mix(tmp_path):
    cases = load_cases(write(tmp_path / "mix.jsonl", MIX))
    llm = ScriptedLLM([reading(product="cheese"), reading(product="cheese", max_price=1), reading("out_of_scope"),
                       reading("order_status"), reading("order_status")])  # fmt: skip
    report = run_cases(Assistant(fake_services(), llm), cases)
    assert (report["cases"], report["passed"]) == (5, 3)
    assert report["by_kind"] == {"after_sales": {"cases": 2, "passed": 1, "pass_rate": 0.5},
                                 "carried": {"cases": 2, "passed": 1, "pass_rate": 0.5},
                                 "out_of_scope": {"cases": 1, "passed": 1, "pass_rate": 1.0}}  # fmt: skip
    assert sorted(f["case"] for f in report["failures"]) == ["cheap-cheese", "wrong"]
    assert report["hygiene"]["turns"] == 5


@pytest.mark.parametrize(
    "line,error",
    [
        ("not json", "line 1 is not JSON"),
        ('{"id": "a", "turns": [{"message": "x", "expect": {"prodcts": "some"}}]}', "turns.0.expect.prodcts"),
        ('{"id": "a", "turns": []}', "turns"),
        ('{"id": "a", "turns": [{"message": "x", "expect": {"outcome": "maybe"}}]}', "outcome"),
    ],
)
def test_bad_case_files_name_the_line_and_field(tmp_path, line, error):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(KefuError, match=error.replace(".", r"\.")):
        load_cases(path)


def test_dialogue_files_and_the_goal_mapping(tmp_path):
    assert [goal_of(i) for i in ("product_search", "comparison", "product_question", "chitchat", "order_status")] == [
        "search", "recommendation", "qa", "meta", "other"]  # fmt: skip
    path = tmp_path / "d.jsonl"
    path.write_text('{"dialogue_id": "a", "utterance_id": 1, "participant": "Client"}\n')
    with pytest.raises(KefuError, match="line 1 lacks utterance"):
        load_dialogues(path)


def test_dialogue_turns_file_resumes(tmp_path):
    from eval.dialogues import run_dialogues

    rows = [{"dialogue_id": "a", "utterance_id": 1, "participant": "Client", "utterance": "hi", "goal": "meta"}]
    kept = tmp_path / "turns.jsonl"
    turn = {"dialogue_id": "a", "utterance_id": 1, "goal": "meta", "intent": "chitchat", "outcome": "answered",
            "message": "hi", "reply": "Hello!", "total_ms": 12.0, "hygiene": {"echo": False}}  # fmt: skip
    kept.write_text(json.dumps(turn) + "\n" + '{"dialogue_id": "b", "utt')  # the second line was cut by a kill
    report = run_dialogues(None, {"a": rows}, turns=kept)  # type: ignore[arg-type]  # replays nothing
    assert (report["utterances"], report["goal_accuracy"], report["turn_ms"]) == (1, 1.0, [12.0])


def test_dialogues_score_the_tracked_goal_and_report_the_intent_mapping_beside_it():
    from eval.dialogues import score

    def turn(goal, intent, predicted):
        return {"goal": goal, "intent": intent, "predicted_goal": predicted, "message": "m", "reply": "r",
                "total_ms": 1.0, "hygiene": {}}  # fmt: skip

    report = score(
        [
            turn("recommendation", "product_search", "recommendation"),  # a preference, advice goes on
            turn("meta", "chitchat", "meta"),
            turn("qa", "return_refund", "service"),  # after-sales is never right here
            turn("search", "product_search", None),
        ],
        dialogues=1,
    )  # no goal tracked: the intent's
    assert report["goal_accuracy"] == 0.75 and report["intent_goal_accuracy"] == 0.5
    assert report["goal_confusion"]["qa"] == {"other": 1}


# -- end to end, real served model ---------------------------------------------------------------------
DIALOGUES = [  # a test construction in MG-ShopDial's format (not real dialogues)
    {"dialogue_id": "t1", "utterance_id": 1, "participant": "Client", "utterance": "hi there", "goal": "meta"},
    {"dialogue_id": "t1", "utterance_id": 2, "participant": "Wizard", "utterance": "Hello!", "goal": "meta"},
    {"dialogue_id": "t1", "utterance_id": 3, "participant": "Client", "utterance": "I need crackers", "goal": "search"},
    {"dialogue_id": "t2", "utterance_id": 1, "participant": "Client", "utterance": "what cheese do you recommend?",
     "goal": "recommendation"},
]  # fmt: skip


def kefu_json(*args):
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.llm
def test_cases_dialogues_and_logs_end_to_end(live, tmp_path):
    live_cases = MIX[:4] + [
        {"id": "impossible", "turns": [{"message": "cheese", "expect": {"products": "some", "max_price": 0.01}}]},
        {"id": "clean", "turns": [{"message": "crackers", "expect": {"reply_excludes": ["<<<", ">>>"]}}]},
    ]
    cases = kefu_json("eval", "cases", "--data", str(write(tmp_path / "c.jsonl", live_cases)))
    assert cases["kind"] == "cases" and cases["cases"] == 6 and cases["passed"] == 6 - len(cases["failures"])
    assert cases["hygiene"]["turns"] == 6 and set(cases["hygiene"]["rates"]) >= {"echo", "glyphs", "ungrounded"}
    failed = {f["case"] for f in cases["failures"]}
    assert "impossible" in failed and "clean" not in failed  # no card costs $0.01; fences never reach the reply

    data, kept = str(write(tmp_path / "d.jsonl", DIALOGUES)), tmp_path / "turns.jsonl"
    dialogues = kefu_json("eval", "dialogues", "--data", data, "--turns", str(kept))
    assert (dialogues["dialogues"], dialogues["utterances"]) == (2, 3)
    assert sum(sum(row.values()) for row in dialogues["goal_confusion"].values()) == 3
    assert 0 <= dialogues["goal_accuracy"] <= 1 and dialogues["p95_turn_ms"] >= dialogues["p50_turn_ms"] > 0
    assert [json.loads(line)["utterance_id"] for line in kept.read_text().splitlines()].count(1) == 2
    again = kefu_json("eval", "dialogues", "--data", data, "--turns", str(kept))  # resumed: nothing left to replay
    assert again["turn_ms"] == dialogues["turn_ms"] and len(kept.read_text().splitlines()) == 3

    from kefu.records.conversations import ConversationLog
    from kefu.records.db import Records

    records = Records(live / "logs" / "records.sqlite")
    first = ConversationLog(records).turns()[0]
    ConversationLog(records).feedback(first["conversation_id"], first["turn"], -1, "not what I asked")
    records.close()
    logs = kefu_json("eval", "logs")
    assert logs["turns"] == 9 and logs["thumbs"] == {"up": 0, "down": 1}
    assert sum(logs["outcomes"].values()) == 9 and logs["tool_calls"] >= 3
    assert logs["turn_ms"]["p50"] > 0 and logs["tokens"]["prompt"] > 0
    assert kefu_json("eval", "logs", "--since", "2999-01-01")["turns"] == 0


def test_log_health_on_a_hand_made_log(records_location, tmp_path):
    from eval.logs import summarize
    from kefu.records.conversations import ConversationLog, ToolCallRecord, TurnRecord
    from kefu.records.db import Records

    records = Records(records_location)
    log = ConversationLog(records)
    search = ToolCallRecord("search_products", {"query": "pasta"}, True, ["p1"], 5.0, "1. PASTA — $1.29")
    failed = ToolCallRecord("order_status", {"order_id": "x"}, False, [], 1.0, "order_status failed: no order x")
    rows = [  # (outcome, intent, tools, reply, product ids, card prices, budget)
        ("answered", "product_search", [search], "Here you go.\n\n1. PASTA — $1.29", ["p1"], [1.29], 2.0),
        ("answered", "product_search", [search], "A discount of $9.99 applies.", ["p1"], [1.29], 1.0),
        ("no_match", "product_search", [], "We don't carry that.", [], [], None),
        ("declined", "out_of_scope", [], "Sorry, I can only help with shopping.", [], [], None),
        ("handoff", "human_handoff", [failed], "A person will reply here.", [], [], None),
    ]
    for i, (outcome, intent, tools, reply, ids, prices, budget) in enumerate(rows, 1):
        understanding = {"intent": intent, "slots": {"budget_max": budget}}
        log.record(TurnRecord(conversation_id="c1", turn=i, customer_id="1111", message=f"message {i}", reply=reply,
                              understanding=understanding, source="llm", product_ids=ids, card_prices=prices,
                              outcome=outcome, repairs=int(i == 2), timings_ms={"total_ms": 100.0 * i},
                              tokens={"prompt": 10, "completion": 5}, tools=tools))  # fmt: skip
    log.feedback("c1", 1, 1)
    log.feedback("c1", 2, -1, "wrong")
    records.close()
    out = summarize(records_location)
    assert out["turns"] == 5 and out["conversations"] == 1
    assert out["outcomes"] == {"answered": 2, "no_match": 1, "declined": 1, "handoff": 1}
    assert (out["no_match_rate"], out["decline_rate"], out["handoff_rate"]) == (0.2, 0.2, 0.2)
    assert out["intent_mix"]["product_search"] == 0.6
    assert out["tools"] == {"order_status": {"calls": 1, "error_rate": 1.0},
                            "search_products": {"calls": 2, "error_rate": 0.0}}  # fmt: skip
    assert out["tool_calls"] == 3 and out["tool_error_rate"] == round(1 / 3, 4)
    assert out["grounding_repairs"] == 1 and out["thumbs"] == {"up": 1, "down": 1}
    # the invented $9.99 ($1.29 came from the tool) and a $1.29 card over the $1 budget
    assert out["hygiene"]["counts"] == {"ungrounded": 1, "over_budget": 1}
    assert out["turn_ms"]["p50"] == 300.0 and out["tokens"]["prompt"] == 50
    with pytest.raises(KefuError, match="No conversation log"):
        summarize(tmp_path / "missing.sqlite")


@pytest.mark.llm
def test_simulate_and_report_end_to_end(live, tmp_path):
    sim = kefu_json("eval", "simulate", "--episodes", "4", "--persona", "all", "--turns", "2", "--seed", "3")
    assert sim["kind"] == "simulate" and sim["episodes"] == 4 and set(sim["personas"]) == {
        "cooperative", "terse", "changes-mind", "adversarial"}  # fmt: skip
    assert 0 <= sim["hit_rate"] <= 1 and sim["hygiene"]["turns"] == len(sim["turn_ms"]) >= 4
    out = tmp_path / "report"
    out.mkdir()
    (out / "simulate.json").write_text(json.dumps(sim))
    report = kefu_json("eval", "report", "--out", str(out))
    assert report["figures"]["simulate"]["hit_rate"] == sim["hit_rate"]
    page = (out / "index.html").read_text()
    assert "<svg" in page and "<script" not in page


def test_scope_scoring_on_hand_made_outcomes():
    from eval.scope import score

    results = [
        ("what's the weather", "weather", "out_of_scope", "declined"),
        ("set an alarm", "alarm", "out_of_scope", "no_match"),
        ("blah", "oos", "out_of_scope", "declined"),
        ("hello", "greeting", "chitchat", "answered"),
        ("add milk to my list", "shopping_list_update", "product_search", "declined"),
    ]
    report = score(results)
    assert (report["oos_recall"], report["out_of_scope_recall"], report["in_scope_false_decline"]) == (1.0, 0.6667, 0.5)
    assert (
        report["false_declines"][0]["label"] == "shopping_list_update" and report["missed"][0]["text"] == "set an alarm"
    )


def test_scope_sample_keeps_validation_rows_only():
    from eval.scope import validation_rows

    rows = validation_rows(None, 40, seed=1)
    assert len(rows) == 40 and set(rows["split"]) <= {"val", "oos_val"} and (rows["source_label"] == "oos").sum() == 10
    assert validation_rows(None, 40, seed=1)["text"].tolist() == rows["text"].tolist()  # seeded


@pytest.mark.llm
def test_scope_end_to_end(live):
    report = kefu_json("eval", "scope", "--sample", "4", "--seed", "2")
    assert report["kind"] == "scope" and report["rows"] == 4 and report["out_of_scope_rows"] >= 1
    inside, outside = report["outcomes_in_scope"], report["outcomes_out_of_scope"]
    assert report["declined"] == inside.get("declined", 0) + outside.get("declined", 0)
    assert sum(inside.values()) + sum(outside.values()) == 4


def test_a_replay_is_not_rate_limited_like_a_shopper(live, monkeypatch):
    """Recorded dialogues replay faster than anyone types: the shopper's per-conversation limit would refuse
    turns 21 and on and score them as wrong (93 of 737 MG-ShopDial turns once were)."""
    from assistant.session import Session
    from eval.turns import replay_assistant, run_turn
    from kefu.settings import Settings

    monkeypatch.setenv("KEFU_RATE_LIMIT_PER_MINUTE", "2")
    settings = Settings()
    assistant, session = replay_assistant(settings), Session(customer_id=None)
    outcomes = [run_turn(assistant, session, "hi").outcome for _ in range(4)]
    assert outcomes == ["answered"] * 4 and settings.rate_limit_per_minute == 2  # the served limit is unchanged
