"""`kefu eval report`: report.json figures from hand-made eval outputs, a safe offline index.html, changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from eval.report import better, build_report, changes, report_command
from kefu.errors import KefuError

HOSTILE = "<script>alert(1)</script> see [link](http://x)"


def hygiene(turns: int, echo: float, hostile: bool = False) -> dict:
    rates = {"echo": echo, "glyphs": 0.0, "repeated_sentence": 0.0, "ungrounded": 0.1, "over_budget": 0.0,
             "unpriced_card": 0.0}  # fmt: skip
    examples = {"echo": [{"message": "<b>hi</b>", "reply": HOSTILE if hostile else "ok"}] * 5}
    return {"turns": turns, "rates": rates, "counts": {"echo": round(echo * turns)}, "examples": examples}


def inputs(pass_rate: float = 0.75, p95_ms: float = 900.0) -> dict[str, dict]:
    return {
        "cases": {
            "kind": "cases", "cases": 4, "passed": round(4 * pass_rate), "pass_rate": pass_rate,
            "by_kind": {"carried": {"cases": 2, "pass_rate": 1.0}, "<img src=x>": {"cases": 2, "pass_rate": 0.5}},
            "failures": [{"case": "c1", "kind": "carried", "turn": 2, "message": "cheap pasta", "reasons": ["no card"],
                          "reply": HOSTILE, "cards": ["Pasta <i>"]}] * 40,
            "hygiene": hygiene(8, 0.25, hostile=True),
            "turn_ms": [100.0, 120.0, 130.0, 200.0, 250.0, 300.0, 400.0, p95_ms],
            "data": "eval/cases/dev.jsonl",
        },
        "dialogues": {
            "kind": "dialogues", "dialogues": 2, "utterances": 5, "goal_accuracy": 0.6,
            "goal_accuracy_by_goal": {"search": 0.5, "order": 1.0},
            "goal_confusion": {"search": {"search": 2, "other": 2}, "order": {"order": 1}},
            "goal_mapping": {}, "grounded_rate": 0.8, "hygiene": hygiene(5, 0.0),
            "p50_turn_ms": 210.0, "p95_turn_ms": 480.0, "turn_ms": [150.0, 200.0, 210.0, 300.0, 500.0], "data": "x",
        },
        "simulate": {
            "kind": "simulate", "shopper": "fake", "episodes": 6, "turns_limit": 6, "k": 2, "repeat": 2,
            "personas": {"bargain": {"episodes": 3, "hit_rate": 2 / 3, "avg_turns_to_hit": 2.5, "budget_violations": 0,
                                     "pass^k": 0.5, "pass^1": 2 / 3},
                         "gift": {"episodes": 3, "hit_rate": 1.0, "avg_turns_to_hit": 1.5, "budget_violations": 1,
                                  "pass^k": 1.0, "pass^1": 1.0}},
            "hit_rate": 5 / 6, "hygiene": hygiene(20, 0.05), "turn_ms": [float(i) for i in range(1, 31)],
            "examples": [{"persona": "gift", "reply": HOSTILE}],
        },
        "logs": {
            "kind": "logs", "turns": 10, "conversations": 3, "intent_mix": {"search": 0.7, "chitchat": 0.3},
            "outcomes": {"answered": 9, "no_match": 1}, "no_match_rate": 0.1, "decline_rate": 0.0,
            "handoff_rate": 0.0, "tools": {"search_products": {"calls": 8, "error_rate": 0.125}},
            "tool_error_rate": 0.125, "grounding_repairs": 1, "thumbs": {"up": 2, "down": 1},
            "hygiene": hygiene(10, 0.0), "turn_ms": {"p50": 300.0, "p95": 800.0, "max": 900.0},
            "tokens": {"prompt": 100, "completion": 50, "per_turn": 15.0},
        },
        "retrieval": {"queries": 4, "corpus": 8, "k": 10, "latency_depth": 100,
                      "systems": {"bm25": {"ndcg@10": 0.61, "recall@100": 0.9, "mrr@10": 0.55, "p50_ms": 2.0,
                                           "p95_ms": 4.0}}},  # fmt: skip
        "intents": {"n": 50, "accuracy": 0.88, "macro_f1": 0.8, "unknown_labels": [],
                    "details": {"ms_per_utterance": 3.2, "per_label": {}}},  # fmt: skip
    }  # fmt: skip


def write_inputs(folder: Path, data: dict[str, dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in data.items():
        (folder / f"{name}.json").write_text(json.dumps(value), encoding="utf-8")


def test_report_figures_equal_the_inputs(tmp_path):
    write_inputs(tmp_path, inputs())
    report = build_report(tmp_path)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["figures"] == report["figures"]
    assert {i["kind"] for i in report["inputs"]} == {"cases", "dialogues", "simulate", "logs", "retrieval", "intents"}
    figures, details = report["figures"], report["details"]
    assert figures["cases"]["pass_rate"] == 0.75
    assert figures["cases"]["by_kind"]["carried"] == {"cases": 2, "pass_rate": 1.0}
    assert figures["cases"]["failures"] == 40 and len(details["failures"]["cases"]) == 30
    assert figures["dialogues"]["goal_accuracy"] == 0.6
    assert details["goal_confusion"]["dialogues"] == {"search": {"search": 2, "other": 2}, "order": {"order": 1}}
    assert figures["simulate"]["hit_rate"] == 5 / 6
    assert figures["simulate"]["personas"]["bargain"]["hit_rate"] == 2 / 3
    assert figures["simulate"]["personas"]["gift"]["pass^k"] == 1.0
    assert figures["hygiene"]["cases"]["echo"] == 0.25 and figures["hygiene"]["dialogues"]["ungrounded"] == 0.1
    assert len(details["hygiene"]["cases"]["examples"]["echo"]) == 3
    assert figures["retrieval"]["systems"]["bm25"]["ndcg@10"] == 0.61
    assert figures["intents"] == {"n": 50, "accuracy": 0.88, "macro_f1": 0.8, "ms_per_utterance": 3.2}
    assert figures["logs"]["no_match_rate"] == 0.1 and figures["logs"]["thumbs_down"] == 1
    assert figures["logs"]["tools"]["search_products"]["error_rate"] == 0.125
    assert figures["latency"]["logs"] == {"p50": 300.0, "p95": 800.0, "max": 900.0}
    assert figures["latency"]["dialogues"]["p50"] == 210.0 and figures["latency"]["cases"]["max"] == 900.0
    for source, n in (("cases", 8), ("dialogues", 5), ("simulate", 30)):
        histogram = details["latency_histogram"][source]
        assert len(histogram["counts"]) == 20 and len(histogram["edges"]) == 21
        assert sum(histogram["counts"]) == n == figures["latency"][source]["n"]
    assert report["changes"] == {} and not (tmp_path / "report.previous.json").exists()


def test_page_is_self_contained_and_escapes_inputs(tmp_path):
    write_inputs(tmp_path, inputs())
    build_report(tmp_path)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<img" not in page and "<b>hi" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "[link](http://x)" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "@import" not in page and "url(" not in page
    # http(s):// appears only inside the escaped input text
    assert {m.start() for m in re.finditer("https?://", page)} <= {m.start() + 7 for m in re.finditer(
        re.escape("[link](http://x)"), page)}  # fmt: skip
    assert page.count("<svg") >= 4  # bars for cases, personas, intent mix; latency histograms
    assert "pass^k" in page and "bargain" in page and "Log health" in page and "ndcg@10" in page


def test_second_run_reports_changes(tmp_path):
    write_inputs(tmp_path, inputs())
    first = build_report(tmp_path)
    write_inputs(tmp_path, inputs(pass_rate=0.5, p95_ms=1500.0))
    report = build_report(tmp_path)
    previous = json.loads((tmp_path / "report.previous.json").read_text())
    assert previous["figures"] == first["figures"]
    assert report["previous"] == first["generated_at"]
    change = report["changes"]["cases.pass_rate"]
    assert change == {"now": 0.5, "before": 0.75, "delta": -0.25, "better": "higher", "verdict": "worse"}
    latency = report["changes"]["latency.cases.max"]
    assert (latency["delta"], latency["better"], latency["verdict"]) == (600.0, "lower", "worse")
    assert report["changes"]["dialogues.goal_accuracy"]["verdict"] == "same"
    assert report["changes"]["cases.cases"]["better"] is None
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "-25.0 pp" in page and 'class="worse"' in page


def test_directions_and_changes():
    assert better("hygiene.cases.echo") == "lower" and better("latency.logs.p95") == "lower"
    assert better("logs.tools.search.error_rate") == "lower" and better("retrieval.systems.bm25.p95_ms") == "lower"
    assert better("simulate.personas.gift.pass^k") == "higher" and better("intents.n") is None
    got = changes({"a": {"hit_rate": 0.5}, "hygiene": {"x": {"echo": 0.2}}, "gone": 1},
                  {"a": {"hit_rate": 0.75}, "hygiene": {"x": {"echo": 0.1}}, "new": 2})  # fmt: skip
    assert got["a.hit_rate"]["verdict"] == "better" and got["hygiene.x.echo"]["verdict"] == "better"
    assert set(got) == {"a.hit_rate", "hygiene.x.echo"}


@pytest.mark.parametrize(
    ("text", "says"),
    [("{not json", "not valid JSON"), ("[1, 2]", "not an object"), ('{"kind": "weather"}', "unknown kind")],
)
def test_bad_input_names_the_file(tmp_path, text, says):
    write_inputs(tmp_path, {"cases": inputs()["cases"]})
    (tmp_path / "broken.json").write_text(text, encoding="utf-8")
    with pytest.raises(KefuError, match=says) as caught:
        build_report(tmp_path)
    assert str(tmp_path / "broken.json") in str(caught.value)
    assert not (tmp_path / "report.json").exists()


def test_explicit_inputs_and_empty_folder(tmp_path):
    elsewhere = tmp_path / "runs"
    write_inputs(elsewhere, inputs())
    report = build_report(tmp_path / "out", [elsewhere / "intents.json", elsewhere / "simulate.json"])
    assert [i["kind"] for i in report["inputs"]] == ["intents", "simulate"]
    assert (tmp_path / "out" / "index.html").is_file()
    with pytest.raises(KefuError, match="No eval results"):
        build_report(tmp_path / "empty")


def test_command_prints_json_or_the_page(tmp_path):
    app = typer.Typer()
    app.command()(report_command)
    write_inputs(tmp_path, {"cases": inputs()["cases"], "other": inputs()["dialogues"]})
    result = CliRunner().invoke(app, ["--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["figures"]["cases"]["pass_rate"] == 0.75
    result = CliRunner().invoke(app, ["--out", str(tmp_path), "--input", str(tmp_path / "cases.json")])
    assert result.exit_code == 0, result.output
    assert "index.html" in result.output and (tmp_path / "report.previous.json").is_file()
