"""``kefu eval dialogues``: replay the shopper turns of recorded dialogues through the assistant.

For MG-ShopDial-format JSON Lines (dialogue_id, utterance_id, participant, utterance, goal, intents) each
dialogue is one session; its ``Client`` utterances are sent in order (the human agent's turns are not: the
assistant answers instead). Each shopper utterance is scored by the conversation goal the assistant tracked at that turn
(``Understanding.goal``: search / recommendation / qa / meta, or service for after-sales, never right here:
MG-ShopDial has none) against the utterance's annotated goal. For comparison, ``intent_goal_accuracy`` scores the
goal each turn's intent alone implies, as this command did before goals were tracked:

    product_search -> search;  recommendation, comparison -> recommendation;  product_question -> qa;
    chitchat, out_of_scope -> meta;  after-sales intents -> other

Latency and reply hygiene come from every turn.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import typer
from rich.progress import Progress

from assistant.loop import Assistant
from assistant.session import Session
from eval.hygiene import Tally
from eval.turns import replay_assistant, run_turn
from kefu.console import console, print_json, settings_of
from kefu.errors import KefuError

GOAL_OF_INTENT = {
    "product_search": "search",
    "recommendation": "recommendation",
    "comparison": "recommendation",
    "product_question": "qa",
    "chitchat": "meta",
    "out_of_scope": "meta",
}
GOALS = ("search", "recommendation", "qa", "meta", "other")
SHOPPER = "Client"
REQUIRED = ("dialogue_id", "utterance_id", "participant", "utterance")


def goal_of(intent: str | None) -> str:
    return GOAL_OF_INTENT.get(intent or "", "other")


def predicted_goal(turn: dict) -> str:
    """The goal the assistant tracked (a turn with none, e.g. a refused one, falls back to its intent's)."""
    goal = turn.get("predicted_goal")
    return goal if goal in GOALS[:-1] else ("other" if goal else goal_of(turn["intent"]))


def load_dialogues(path: Path, limit: int | None = None) -> dict[str, list[dict]]:
    """dialogue id -> its shopper utterances in order (at most ``limit`` dialogues, in file order)."""
    if not path.is_file():
        raise KefuError(f"No dialogue file {path}; expected MG-ShopDial-style JSON Lines (utterances.jsonl).")
    dialogues: dict[str, list[dict]] = defaultdict(list)
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise KefuError(f"{path} line {n} is not JSON ({exc.msg}).") from None
        if missing := [k for k in REQUIRED if k not in row]:
            raise KefuError(f"{path} line {n} lacks {', '.join(missing)}; each line needs {', '.join(REQUIRED)}.")
        if row["participant"] == SHOPPER and str(row["utterance"]).strip():
            dialogues[str(row["dialogue_id"])].append(row)
    chosen = list(dialogues)[:limit] if limit else list(dialogues)
    if not chosen:
        raise KefuError(f"{path} holds no {SHOPPER!r} utterances to replay.")
    return {d: sorted(dialogues[d], key=lambda r: int(r["utterance_id"])) for d in chosen}


def replay(assistant: Assistant, utterances: list[dict]) -> list[dict]:
    """One dialogue's shopper turns in one session; a scored row per turn (what ``score`` and ``--turns`` keep)."""
    session, rows = Session(customer_id=None), []
    for row in utterances:
        turn = run_turn(assistant, session, str(row["utterance"]))
        rows.append({"dialogue_id": str(row["dialogue_id"]), "utterance_id": row["utterance_id"],
                     "goal": row.get("goal"), "intent": turn.intent, "predicted_goal": turn.goal,
                     "outcome": turn.outcome, "message": turn.message, "reply": turn.reply, "total_ms": turn.total_ms,
                     "hygiene": turn.hygiene})  # fmt: skip
    return rows


def score(results: list[dict], dialogues: int) -> dict:
    confusion: dict[str, Counter] = defaultdict(Counter)
    by_intent = Counter()  # right / scored when the goal is read off the turn's intent alone
    hygiene, latencies, grounded = Tally(), [], 0
    for turn in results:
        if turn.get("goal"):
            confusion[turn["goal"]][predicted_goal(turn)] += 1
            by_intent["right"] += goal_of(turn["intent"]) == turn["goal"]
            by_intent["scored"] += 1
        hygiene.add(turn["hygiene"], turn["message"], turn["reply"])
        latencies.append(turn["total_ms"])
        grounded += not turn["hygiene"].get("ungrounded")
    scored = sum(sum(c.values()) for c in confusion.values())
    right = sum(confusion[g][g] for g in confusion)
    per_goal = {g: round(c[g] / sum(c.values()), 4) for g, c in sorted(confusion.items())}
    return {
        "kind": "dialogues",
        "dialogues": dialogues,
        "utterances": len(results),
        "goal_accuracy": round(right / scored, 4) if scored else None,
        "goal_accuracy_by_goal": per_goal,
        "intent_goal_accuracy": round(by_intent["right"] / by_intent["scored"], 4) if by_intent["scored"] else None,
        "goal_confusion": {g: dict(c) for g, c in sorted(confusion.items())},
        "goal_mapping": GOAL_OF_INTENT | {"(other intents)": "other"},
        "grounded_rate": round(grounded / len(results), 4) if results else None,
        "hygiene": hygiene.as_json(),
        "p50_turn_ms": float(np.percentile(latencies, 50)) if latencies else None,
        "p95_turn_ms": float(np.percentile(latencies, 95)) if latencies else None,
        "turn_ms": sorted(latencies),
    }


def load_turns(path: Path | None) -> dict[str, list[dict]]:
    """Scored turns kept by an earlier run (``--turns``), by dialogue; a torn last line is dropped."""
    kept: dict[str, list[dict]] = defaultdict(list)
    if path is None or not path.is_file():
        return kept
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a run killed mid-write; that dialogue is replayed again
        kept[row["dialogue_id"]].append(row)
    return kept


def run_dialogues(assistant: Assistant, dialogues: dict[str, list[dict]], workers: int = 1,
                  progress: bool = False, turns: Path | None = None) -> dict:  # fmt: skip
    """Replay every dialogue; with ``turns``, each finished dialogue's rows are appended there as it ends and
    dialogues already complete in the file are not replayed again (a long run can be stopped and resumed)."""
    kept = load_turns(turns)
    done_ids = {d for d, rows in dialogues.items() if len(kept.get(d, [])) == len(rows)}
    results = [row for d in dialogues if d in done_ids for row in kept[d]]
    todo = [rows for d, rows in dialogues.items() if d not in done_ids]
    out = turns.open("a") if turns else None
    try:
        with Progress(console=console, disable=not progress) as bar:
            task = bar.add_task("dialogues", total=len(dialogues), completed=len(done_ids))
            with ThreadPoolExecutor(max(1, workers)) as pool:  # dialogues in parallel, turns of one in order
                for done in pool.map(lambda rows: replay(assistant, rows), todo):
                    results += done
                    if out:
                        out.write("".join(json.dumps(row) + "\n" for row in done))
                        out.flush()
                    bar.advance(task)
    finally:
        if out:
            out.close()
    return score(results, len(dialogues))


TURNS_HELP = "Keep every scored turn in this JSON Lines file; a rerun with it skips the dialogues it holds."


def dialogues_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="MG-ShopDial-style utterances.jsonl."),
    limit: int = typer.Option(None, "--limit", min=1, help="Replay only the first N dialogues."),
    workers: int = typer.Option(4, "--workers", min=1, max=16, help="Dialogues replayed at once."),
    turns: Path = typer.Option(None, "--turns", help=TURNS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Replay recorded dialogues' shopper turns: goal accuracy and confusion, grounding, hygiene, latency."""
    dialogues = load_dialogues(data, limit)
    assistant = replay_assistant(settings_of(ctx))
    report = run_dialogues(assistant, dialogues, workers, progress=True, turns=turns) | {"data": str(data)}
    if as_json:
        print_json(report)
        return
    console.print(f"{report['utterances']} shopper turns in {report['dialogues']} dialogues: goal accuracy "
                  f"{report['goal_accuracy']:.1%}, p50 {report['p50_turn_ms']:.0f} ms")  # fmt: skip
