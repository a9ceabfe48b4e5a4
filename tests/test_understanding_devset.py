"""The labelled development set for ``kefu eval understanding`` (eval/cases/understanding/dev.jsonl) is well formed:
every line has the ten scored fields with values the reading schema allows, ids are unique, and every field
has enough non-default cases to be measured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from assistant.understanding.schema import INTENTS, REFINEMENTS, CardQuestion, History

DEV_SET = Path(__file__).resolve().parents[1] / "eval" / "cases" / "understanding" / "dev.jsonl"
DEFAULTS = {
    "intent": None,
    "items": [],
    "budget_max": None,
    "budget_min": None,
    "refinement": "none",
    "product_refs": [],
    "order_id": None,
    "card_question": "none",
    "need": None,
    "history": "none",
}
SOURCES = {"hand", "bitext-train", "clinc150-train"}


def load() -> list[dict]:
    return [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines()]


LINES = load()


def test_size_and_unique_ids():
    ids = [line["id"] for line in LINES]
    assert len(LINES) >= 300
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("line", LINES, ids=lambda line: line["id"])
def test_line_format(line):
    assert set(line) <= {"id", "message", "source", "context", "expect"}
    assert isinstance(line["message"], str) and line["message"].strip()
    assert line["source"] in SOURCES
    e = line["expect"]
    assert set(e) == set(DEFAULTS)
    assert e["intent"] in INTENTS
    assert e["refinement"] in REFINEMENTS
    assert e["card_question"] in get_args(CardQuestion)
    assert e["history"] in get_args(History)
    assert all(isinstance(i, str) and i == i.lower() and i.strip() for i in e["items"])
    assert all(isinstance(r, int) and (r >= 1 or r == -1) for r in e["product_refs"])
    for key in ("budget_min", "budget_max"):
        assert e[key] is None or (isinstance(e[key], int | float) and e[key] >= 0)
    assert e["order_id"] is None or e["order_id"].isdigit()
    assert e["need"] is None or isinstance(e["need"], str)
    if "context" in line:
        context = line["context"]
        assert set(context) <= {"last_query", "cards"}
        for card in context.get("cards", []):
            assert set(card) == {"title", "price", "brand", "size"} and card["brand"] in {"National", "Private"}


@pytest.mark.parametrize("field", [f for f in DEFAULTS if f != "intent"])
def test_every_field_has_cases(field):
    assert sum(line["expect"][field] != DEFAULTS[field] for line in LINES) >= 15


def test_card_questions_and_refinements_are_follow_ups():
    for line in LINES:
        e = line["expect"]
        if e["card_question"] != "none" or e["refinement"] != "none":
            assert line.get("context", {}).get("cards"), line["id"]


def _messages(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["message"].strip().lower()} if isinstance(node.get("message"), str) else set()
        return found.union(*(_messages(v) for k, v in node.items() if k != "message"))
    if isinstance(node, list):
        return set().union(*(_messages(v) for v in node))
    return set()


def test_no_turn_is_copied_from_the_case_suites():
    cases = DEV_SET.parents[1]
    suites = set().union(
        *(_messages(json.loads(row)) for path in cases.glob("*.jsonl") for row in path.read_text().splitlines() if row)
    )
    assert suites  # the case suites were read
    assert not {line["message"].strip().lower() for line in LINES} & suites
