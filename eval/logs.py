"""``kefu eval logs``: the health of the assistant as shoppers met it, read from its own records database
(``settings.records_location``: the conversation log and the page's thumbs up/down, in SQLite or PostgreSQL).

Turns, intent mix, outcomes (answered / no_match / declined / handoff / refused), tool success and error rates
per tool, grounding repairs, thumbs, reply hygiene (the same checks as every eval command, on the logged
message and reply; prices and ids count as grounded when a logged tool output stated them), latency
percentiles and tokens. Text in the log is PII-redacted; ids (order, product, case) are kept.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import typer

from eval.hygiene import Tally, check, facts_of
from kefu.console import console, print_json, settings_of
from kefu.errors import KefuError
from kefu.records.db import Records


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)), "max": max(values)}


def summarize(location: Path | str, since: date | None = None) -> dict:
    """The report over the records at ``location``: a SQLite file or a PostgreSQL URL (``kefu.records.db``)."""
    if isinstance(location, Path) and not location.is_file():
        raise KefuError(
            f"No conversation log at {location}; chat with the assistant first (`kefu serve`, `kefu chat`)."
        )
    records = Records(location)  # applies any migration the database lacks
    try:
        where, params = ("WHERE created_at >= ?", (since.isoformat(),)) if since else ("", ())
        turns = records.rows(f"SELECT * FROM turns {where} ORDER BY id", params)
        calls: dict[int, list[dict]] = defaultdict(list)
        for row in records.rows("SELECT * FROM tool_calls ORDER BY id"):
            calls[row["turn_id"]].append(row)
        feedback = records.rows(f"SELECT rating FROM feedback {where}", params)
    finally:
        records.close()

    intents, outcomes, refused = Counter(), Counter(), Counter()
    tools: dict[str, Counter] = defaultdict(Counter)
    hygiene, latency, first_token, tokens, repairs = Tally(), [], [], Counter(), 0
    for t in turns:
        understanding = json.loads(t["understanding"]) if t["understanding"] else None
        intents[understanding["intent"] if understanding else "(refused)"] += 1
        outcomes[t["outcome"] or "answered"] += 1
        if t["refused"]:
            refused[t["refused"]] += 1
        mine = calls.get(t["id"], [])
        for c in mine:
            tools[c["name"]]["ok" if c["ok"] else "error"] += 1
        repairs += t["repairs"]
        prices, known_ids = facts_of([c["summary"] or "" for c in mine])
        card_prices = json.loads(t["card_prices"]) if t["card_prices"] else []
        prices |= {f"{p:.2f}" for p in card_prices if p is not None}
        known_ids |= set(json.loads(t["product_ids"]))
        budget = (understanding or {}).get("slots", {}).get("budget_max")
        flags = check(t["message"], t["reply"], card_prices, budget, prices, known_ids)
        hygiene.add(flags, t["message"], t["reply"])
        timings = json.loads(t["timings"])
        latency.append(timings.get("total_ms", 0.0))
        if "first_token_ms" in timings:
            first_token.append(timings["first_token_ms"])
        tokens["prompt"] += t["prompt_tokens"]
        tokens["completion"] += t["completion_tokens"]
    n = len(turns)
    thumbs = Counter("up" if f["rating"] > 0 else "down" for f in feedback)

    def rate(count: int) -> float:
        return round(count / n, 4) if n else 0.0

    return {
        "kind": "logs",
        "log": records.where,
        "since": since.isoformat() if since else None,
        "turns": n,
        "conversations": len({t["conversation_id"] for t in turns}),
        "first_turn_at": turns[0]["created_at"] if turns else None,
        "last_turn_at": turns[-1]["created_at"] if turns else None,
        "intent_mix": {k: rate(v) for k, v in intents.most_common()},
        "outcomes": dict(outcomes),
        "no_match_rate": rate(outcomes["no_match"]),
        "decline_rate": rate(outcomes["declined"]),
        "handoff_rate": rate(outcomes["handoff"]),
        "refused": dict(refused),
        "tools": {
            name: {"calls": c["ok"] + c["error"], "error_rate": round(c["error"] / (c["ok"] + c["error"]), 4)}
            for name, c in sorted(tools.items())
        },
        "tool_calls": (calls_made := sum(sum(c.values()) for c in tools.values())),
        "tool_error_rate": round(sum(c["error"] for c in tools.values()) / max(1, calls_made), 4),
        "grounding_repairs": repairs,
        "turns_with_repairs": rate(sum(t["repairs"] > 0 for t in turns)),
        "thumbs": {"up": thumbs["up"], "down": thumbs["down"]},
        "hygiene": hygiene.as_json(),
        "turn_ms": _percentiles(latency),
        "first_token_ms": _percentiles(first_token),
        "tokens": {
            "prompt": tokens["prompt"],
            "completion": tokens["completion"],
            "per_turn": round((tokens["prompt"] + tokens["completion"]) / n, 1) if n else 0.0,
        },  # fmt: skip
    }


def logs_command(
    ctx: typer.Context,
    since: str = typer.Option(None, "--since", help="Only turns on or after this date (YYYY-MM-DD)."),
    log: Path = typer.Option(
        None, "--log", help="A SQLite records file (default: the settings' records, KEFU_RECORDS_URL or the file)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Health of the assistant from its own conversation log: outcomes, tools, repairs, thumbs, hygiene, latency."""
    try:
        day = date.fromisoformat(since) if since else None
    except ValueError:
        raise KefuError(f"--since takes a date as YYYY-MM-DD, not {since!r}.") from None
    report = summarize(log or settings_of(ctx).records_location, day)
    if as_json:
        print_json(report)
        return
    console.print(f"{report['turns']} turns in {report['conversations']} conversations; "
                  f"no-match {report['no_match_rate']:.1%}, declined {report['decline_rate']:.1%}, "
                  f"handoff {report['handoff_rate']:.1%}, thumbs {report['thumbs']}")  # fmt: skip
