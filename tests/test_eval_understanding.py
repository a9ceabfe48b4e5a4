"""``kefu eval understanding``: file checks, the per-field scoring on hand-made readings, and the command end to
end against the real assistant (served model, classifier where trained, test shop)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eval.understanding import load_lines, score
from kefu.errors import KefuError
from ui.cli import app

CARDS = [{"title": "Peanut Butter Creamy", "price": 2.49, "brand": "National", "size": "18 OZ"},
         {"title": "Peanut Butter Crunchy", "price": 1.99, "brand": "Private", "size": "18 OZ"}]  # fmt: skip
LINES = [
    {"id": "a1", "message": "cheap pasta under $3",
     "expect": {"intent": "product_search", "items": ["pasta"], "budget_max": 3, "budget_min": None}},
    {"id": "a2", "message": "I need milk, eggs and bread",
     "expect": {"intent": "product_search", "items": ["milk", "eggs", "bread"]}},
    {"id": "a3", "message": "something cheaper", "context": {"last_query": "peanut butter", "cards": CARDS},
     "expect": {"refinement": "cheaper", "items": []}},
    {"id": "a4", "message": "is the second one a store brand?", "context": {"last_query": "peanut butter",
     "cards": CARDS}, "expect": {"intent": "product_question", "card_question": "brand", "product_refs": [2]}},
    {"id": "a5", "message": "where is my order 31625220889?",
     "expect": {"intent": "order_status", "order_id": "31625220889"}},
]  # fmt: skip


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (['{"id": "x", "message": "hi"}', "{not json"], "line 2: field (the line)"),
        ([{"id": "x"}], "line 1: field message"),
        ([{"id": "x", "message": "hi", "expect": {"intnet": "chitchat"}}], "line 1: field expect.intnet"),
        ([{"id": "x", "message": "hi", "context": {"cards": [{"price": 2}]}}], "field context.cards.0.title"),
        ([{"id": "x", "message": "hi"}, {"id": "x", "message": "yo"}], "ids must be unique; repeated: x"),
        ([], "holds no lines"),
    ],
)
def test_bad_files_name_the_line_and_field(tmp_path, rows, says):
    with pytest.raises(KefuError, match=None) as err:
        load_lines(write(tmp_path / "u.jsonl", rows))
    assert says in str(err.value)


def test_a_missing_file_says_what_is_expected(tmp_path):
    with pytest.raises(KefuError, match="expected JSON Lines"):
        load_lines(tmp_path / "nope.jsonl")


def test_each_field_is_scored_for_the_readers_that_read_it():
    rows = [
        {"expect": {"intent": "product_search", "items": ["pasta"], "budget": (None, 3.0)},
         "readings": {"rules": {"intent": "product_search", "items": ["pastas"], "budget": (None, 3.0)},
                      "classifier": {"intent": "chitchat"},
                      "model": {"intent": "product_search", "items": ["pasta", "sauce"], "budget": (None, 30.0)},
                      "combined": None}},  # the model was down for this line: not scored
        {"expect": {"intent": "product_question", "product_refs": [2], "items": ["milk", "eggs"]},
         "readings": {"rules": {"intent": "product_search", "product_refs": [2], "items": ["milk"]},
                      "classifier": {"intent": "product_question"},
                      "model": {"intent": "product_question", "items": []}}},
    ]  # fmt: skip
    out = score(rows)
    assert out["rules"]["intent"] == {"n": 2, "accuracy": 0.5} and out["rules"]["product_refs"]["accuracy"] == 1.0
    assert out["rules"]["items"] == {"precision": 1.0, "recall": 0.6667, "f1": 0.8}  # "pastas" is "pasta"
    assert out["classifier"] == {"intent": {"n": 2, "accuracy": 0.5}}  # it reads nothing else
    assert out["model"]["budget"] == {"n": 1, "accuracy": 0.0} and "product_refs" not in out["model"]
    assert out["model"]["items"] == {"precision": 0.5, "recall": 0.3333, "f1": 0.4}
    assert out["combined"] == {}


@pytest.mark.llm
def test_the_command_scores_every_reader_and_writes_the_combined_readings(live, tmp_path):
    out = tmp_path / "pred.jsonl"
    result = CliRunner().invoke(app, ["eval", "understanding", "--data", str(write(tmp_path / "u.jsonl", LINES)),
                                      "--predictions-out", str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["lines"], report["scored"]) == (5, 5)
    combined, rules = report["readers"]["combined"], report["readers"]["rules"]
    # the exact parsers carry these fields whatever the small model says
    for field in ("card_question", "product_refs", "order_id", "refinement", "budget"):
        assert combined[field]["accuracy"] == 1.0 and rules[field]["accuracy"] == 1.0, field
    assert 0 < combined["items"]["f1"] <= 1 and combined["intent"]["n"] == 4  # a3 expects no intent
    assert set(report["readers"]["model"]) >= {"intent", "items", "budget"}  # the served model, field by field
    written = [json.loads(x) for x in out.read_text().splitlines()]
    assert [w["id"] for w in written] == ["a1", "a2", "a3", "a4", "a5"]
    assert written[1]["understanding"]["slots"]["items"] == ["milk", "eggs", "bread"]  # a list, item by item
    assert written[3]["understanding"]["slots"]["card_question"] == "brand"
    assert written[4]["understanding"]["slots"]["order_id"] == "31625220889"
