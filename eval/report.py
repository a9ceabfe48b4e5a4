"""``kefu eval report``: one report.json and one offline index.html from the JSON the other eval commands print.

Reads the ``--json`` output of ``kefu eval cases | dialogues | simulate | logs | retrieval | intents``, keeps the key
figures and compares them with the previous report in the same folder (moved to report.previous.json first). The
page is a single self-contained file: inline CSS and SVG, no scripts, no external links; every text taken from an
input goes through ``html.escape`` (replies may hold anything).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import typer

from eval.report_page import flatten, is_num, render_page
from kefu.console import console, print_json
from kefu.errors import KefuError

KINDS = ("cases", "dialogues", "simulate", "logs", "retrieval", "intents")
REPORT, PREVIOUS, PAGE = "report.json", "report.previous.json", "index.html"
BINS, MAX_FAILURES, MAX_EXAMPLES = 20, 30, 3
NEUTRAL = {"cases", "passed", "dialogues", "utterances", "episodes", "queries", "corpus", "k", "n", "turns",
           "conversations", "calls", "turns_limit", "repeat", "tokens_per_turn", "thumbs_up"}  # fmt: skip
LOWER = {"p50", "p95", "max", "p50_ms", "p95_ms", "budget_violations", "avg_turns_to_hit", "grounding_repairs",
         "thumbs_down", "ms_per_utterance", "failures", "no_match_rate", "decline_rate", "handoff_rate"}  # fmt: skip


# --- loading ---------------------------------------------------------------------------------------------------
def kind_of(data: dict) -> str | None:
    """The eval command that printed ``data``: its "kind", or recognised by its keys for the older commands."""
    if "kind" in data:
        return data["kind"] if data["kind"] in KINDS else None
    if "systems" in data and "queries" in data:
        return "retrieval"
    if "accuracy" in data and "macro_f1" in data:
        return "intents"
    return None


def default_inputs(out_dir: Path) -> list[Path]:
    return sorted(p for p in out_dir.glob("*.json") if p.name not in (REPORT, PREVIOUS))


def load_inputs(paths: list[Path]) -> list[tuple[str, str, dict]]:
    """(source name, kind, data) per file; the source is the kind, or kind:file-stem for a second file of a kind."""
    expected = "the JSON object printed by `kefu eval cases|dialogues|simulate|logs|retrieval|intents --json`"
    loaded: list[tuple[str, str, dict]] = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise KefuError(f"Cannot read {path}: {exc.strerror}; expected {expected}.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise KefuError(f"{path} is not valid JSON ({exc}); expected {expected}.") from None
        if not isinstance(data, dict):
            raise KefuError(f"{path} holds a JSON {type(data).__name__}, not an object; expected {expected}.")
        if (kind := kind_of(data)) is None:
            raise KefuError(f"{path}: unknown kind {data.get('kind')!r}; expected {expected} (or pass --input).")
        names = {name for name, _, _ in loaded}
        loaded.append((kind if kind not in names else f"{kind}:{path.stem}", kind, data))
    return loaded


# --- figures ---------------------------------------------------------------------------------------------------
def _tree(value: Any) -> dict:
    """The numeric leaves of a nested dict, nesting kept."""
    if not isinstance(value, dict):
        return {}
    out = {str(k): (v if is_num(v) else _tree(v)) for k, v in value.items() if is_num(v) or isinstance(v, dict)}
    return {k: v for k, v in out.items() if v != {}}


def _pick(data: dict, *keys: str) -> dict:
    return {k: data[k] for k in keys if is_num(data.get(k))}


def figures_of(kind: str, data: dict) -> dict:
    """The key figures of one input (hygiene and latency apart)."""
    if kind == "cases":
        failures = data.get("failures") or []
        return _pick(data, "cases", "passed", "pass_rate") | {"by_kind": _tree(data.get("by_kind")),
                                                              "failures": len(failures)}  # fmt: skip
    if kind == "dialogues":
        return _pick(data, "dialogues", "utterances", "goal_accuracy", "grounded_rate") | {
            "goal_accuracy_by_goal": _tree(data.get("goal_accuracy_by_goal"))}  # fmt: skip
    if kind == "simulate":
        return _pick(data, "episodes", "turns_limit", "k", "repeat", "hit_rate") | {
            "personas": _tree(data.get("personas"))
        }
    if kind == "retrieval":
        return _pick(data, "queries", "corpus", "k") | {"systems": _tree(data.get("systems"))}
    if kind == "intents":
        return _pick(data, "n", "accuracy", "macro_f1") | _pick(data.get("details") or {}, "ms_per_utterance")
    thumbs = data.get("thumbs") or {}
    return (_pick(data, "turns", "conversations", "no_match_rate", "decline_rate", "handoff_rate", "tool_error_rate",
                  "grounding_repairs") | {"thumbs_up": thumbs.get("up", 0), "thumbs_down": thumbs.get("down", 0)}
            | _pick(data.get("tokens") or {}, "tokens_per_turn") | {"tools": _tree(data.get("tools"))})  # fmt: skip


def latency_of(turn_ms: Any) -> tuple[dict, dict | None]:
    """({n, p50, p95, max}, {edges, counts} histogram or None) from a list of turn times or a {p50, p95, max}."""
    if isinstance(turn_ms, dict):
        return _pick(turn_ms, "p50", "p95", "max"), None
    values = np.array([v for v in turn_ms or [] if is_num(v)], dtype=float)
    if not len(values):
        return {"n": 0}, None
    counts, edges = np.histogram(values, bins=BINS)
    figures = {"n": len(values), "p50": round(float(np.percentile(values, 50)), 2),
               "p95": round(float(np.percentile(values, 95)), 2), "max": round(float(values.max()), 2)}  # fmt: skip
    return figures, {"edges": [round(float(x), 2) for x in edges], "counts": [int(c) for c in counts]}


def assemble(loaded: list[tuple[str, str, dict]], inputs: list[Path]) -> dict:
    """report.json without "changes": figures (numeric, compared between runs) and details (for the page)."""
    figures: dict[str, dict] = {"hygiene": {}, "latency": {}}
    details: dict[str, dict] = {"failures": {}, "hygiene": {}, "goal_confusion": {}, "latency_histogram": {},
                                "intent_mix": {}}  # fmt: skip
    for source, kind, data in loaded:
        figures[source] = figures_of(kind, data)
        if isinstance(hygiene := data.get("hygiene"), dict):
            figures["hygiene"][source] = _tree(hygiene.get("rates"))
            examples = hygiene.get("examples") if isinstance(hygiene.get("examples"), dict) else {}
            kept = {str(check): list(shown)[:MAX_EXAMPLES] for check, shown in examples.items()}
            details["hygiene"][source] = {"turns": hygiene.get("turns"), "examples": kept}
        if "turn_ms" in data:
            figures["latency"][source], histogram = latency_of(data["turn_ms"])
            if histogram:
                details["latency_histogram"][source] = histogram
        if kind == "cases":
            details["failures"][source] = list(data.get("failures") or [])[:MAX_FAILURES]
        if kind == "dialogues" and isinstance(data.get("goal_confusion"), dict):
            details["goal_confusion"][source] = _tree(data["goal_confusion"])
        if kind == "logs":
            details["intent_mix"][source] = _tree(data.get("intent_mix"))
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": [{"file": str(p), "kind": kind, "source": s} for p, (s, kind, _) in zip(inputs, loaded, strict=True)],
        "figures": figures,
        "details": details,
    }


def better(path: str) -> str | None:
    """ "higher" or "lower" is better for the figure at ``path``; None for counts that are neither."""
    leaf = path.rsplit(".", 1)[-1]
    if leaf in NEUTRAL:
        return None
    if path.startswith(("hygiene.", "latency.")) or leaf in LOWER or leaf.endswith("error_rate"):
        return "lower"
    return "higher"


def changes(before: dict, now: dict) -> dict[str, dict]:
    """{path: {now, before, delta, better, verdict}} for every numeric figure in both."""
    old, new = flatten(before), flatten(now)
    out = {}
    for path in sorted(old.keys() & new.keys()):
        delta, way = round(new[path] - old[path], 6), better(path)
        verdict = "same" if delta == 0 else "changed" if way is None else \
            "better" if (delta > 0) == (way == "higher") else "worse"  # fmt: skip
        out[path] = {"now": new[path], "before": old[path], "delta": delta, "better": way, "verdict": verdict}
    return out


def build_report(out_dir: Path, inputs: list[Path] | None = None) -> dict:
    """Write out_dir/report.json and out_dir/index.html from the inputs (default: out_dir's *.json); return the
    report. An existing report.json becomes report.previous.json and the baseline of "changes"."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = list(inputs or default_inputs(out_dir))
    if not paths:
        raise KefuError(f"No eval results in {out_dir}: save e.g. `kefu eval cases --json > {out_dir}/cases.json` "
                        f"first, or pass --input FILE.")  # fmt: skip
    report = assemble(load_inputs(paths), paths)
    report["previous"], before = None, {}
    if (out_dir / REPORT).is_file():
        (out_dir / REPORT).replace(out_dir / PREVIOUS)
        try:
            old = json.loads((out_dir / PREVIOUS).read_text(encoding="utf-8"))
            before, report["previous"] = old.get("figures") or {}, old.get("generated_at")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            console.print(f"[yellow]{out_dir / PREVIOUS} is not a report; no changes computed.[/yellow]")
    report["changes"] = changes(before, report["figures"]) if isinstance(before, dict) else {}
    (out_dir / REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    (out_dir / PAGE).write_text(render_page(report), encoding="utf-8")
    return report


def report_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Folder for report.json and index.html (and of the eval JSON)."),
    inputs: list[Path] = typer.Option(
        None, "--input", help="An eval --json file; repeatable (default: *.json in --out)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print report.json's content as one JSON object."),
) -> None:
    """One report (report.json and an offline index.html) from saved `kefu eval … --json` outputs, with changes."""
    report = build_report(out, inputs or None)
    if as_json:
        print_json(report)
        return
    console.print(str(out / PAGE))
