"""``kefu eval scope``: does the whole assistant decline what is outside shopping, and only that?

Runs real turns (the classifier, the served model's reading, the rules, the catalogue evidence, the language
check: everything up to the reply) on CLINC150's validation split (``val`` + ``oos_val``; the classifier trains
on ``train`` only). Each label is mapped by the package's ``intent_map.toml``: mapped to ``out_of_scope`` (CLINC's
``oos`` queries and its banking, travel, weather … domains) it should be declined; mapped to anything else
(small talk, order and shopping-list requests, food questions, card payments) it should not.

Reports out-of-scope recall (CLINC's own ``oos`` label and every out-of-scope label), the in-scope false-decline
rate, and examples of both errors. ``--sample N`` draws N rows stratified by kind (all ``oos_val`` rows first);
a turn costs one model request, about 1–2 s on 2 cores.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pandas as pd
import typer
from rich.progress import track

from assistant.session import Session
from assistant.understanding.intent_data import clinc_path, load_clinc, load_intent_map
from eval.turns import replay_assistant, run_turn
from kefu.console import console, print_json, settings_of
from kefu.errors import KefuError


def validation_rows(path: Path | None, sample: int | None, seed: int = 0) -> pd.DataFrame:
    """CLINC150 validation rows with the assistant intent they map to; at most ``sample`` of them."""
    try:
        rows = load_clinc(load_intent_map(), path or clinc_path())
    except (OSError, ValueError) as exc:
        raise KefuError(f"Cannot read CLINC150 from {path or clinc_path()} ({exc}); pass --data FILE.jsonl.") from None
    rows = rows[rows["split"].isin(["val", "oos_val"])].reset_index(drop=True)
    if rows.empty:
        raise KefuError("No CLINC150 validation rows (split val / oos_val) in the file.")
    if sample is None or sample >= len(rows):
        return rows
    oos = rows[rows["source_label"] == "oos"]
    rest = rows.drop(oos.index)
    n_oos = min(len(oos), max(1, sample // 4))
    rng = random.Random(seed)
    picked = rng.sample(list(oos.index), n_oos) + rng.sample(list(rest.index), min(len(rest), sample - n_oos))
    return rows.loc[sorted(picked)].reset_index(drop=True)


def score(results: list[tuple[str, str, str, str]]) -> dict:
    """``results``: (text, source label, mapped intent, turn outcome) per row."""
    declined = [(t, label, m) for t, label, m, outcome in results if outcome == "declined"]
    out = [r for r in results if r[2] == "out_of_scope"]
    clinc_oos = [r for r in out if r[1] == "oos"]
    inside = [r for r in results if r[2] != "out_of_scope"]
    false = [r for r in inside if r[3] == "declined"]
    missed = [r for r in out if r[3] != "declined"]

    def rate(part, whole):
        return round(len(part) / len(whole), 4) if whole else None

    return {
        "kind": "scope",
        "rows": len(results),
        "out_of_scope_rows": len(out),
        "in_scope_rows": len(inside),
        "oos_recall": rate([r for r in clinc_oos if r[3] == "declined"], clinc_oos),
        "out_of_scope_recall": rate([r for r in out if r[3] == "declined"], out),
        "in_scope_false_decline": rate(false, inside),
        "declined": len(declined),
        "outcomes_in_scope": dict(Counter(r[3] for r in inside)),
        "outcomes_out_of_scope": dict(Counter(r[3] for r in out)),
        "false_declines": [{"text": t, "label": label, "intent": m} for t, label, m, _ in false[:10]],
        "missed": [{"text": t, "label": label, "outcome": o} for t, label, _, o in missed[:10]],
    }


def scope_command(
    ctx: typer.Context,
    data: Path = typer.Option(None, "--data", help="CLINC150 train_val.jsonl (default: the packaged copy)."),
    sample: int = typer.Option(400, "--sample", min=1, help="Rows to run (0 = every validation row)."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Out-of-scope recall and in-scope false declines of the whole assistant on CLINC150 validation."""
    rows = validation_rows(data, sample or None, seed)
    assistant = replay_assistant(settings_of(ctx))
    results = []
    for text, label, intent in track(
        list(zip(rows["text"], rows["source_label"], rows["intent"], strict=True)), description="scope", console=console
    ):
        turn = run_turn(assistant, Session(customer_id=None), text)
        results.append((text, label, intent, turn.outcome))
    report = score(results) | {"data": str(data or clinc_path()), "sample": len(rows), "seed": seed}
    if as_json:
        print_json(report)
        return
    console.print(f"out-of-scope recall {report['out_of_scope_recall']:.1%}, "
                  f"in-scope false declines {report['in_scope_false_decline']:.1%}")  # fmt: skip
