"""``kefu eval cases``: the regression suite a shop writes for its own assistant (in the spirit of Rasa's
end-to-end test stories and promptfoo's assertions), run against the real served model and store.

A case file is JSON Lines, one case a line::

    {"id": "pasta-budget", "kind": "carried", "customer_id": "1111",
     "turns": [{"message": "pasta under $2", "expect": {"products": "some", "category_any": ["PASTA"],
                                                        "max_price": 2}}]}

Every expectation is optional and checked on its turn: ``products`` ("some" | "none"), ``category_any`` (one of
the first three cards' category contains one of these, case-insensitively), ``max_price`` (every card priced
and at most this), ``intent_any``, ``tool_any`` / ``tool_none`` (tool names), ``outcome`` ("no_match" |
"handoff" | "declined" | "answered" | "refused"), ``reply_contains_any`` / ``reply_excludes`` (strings,
case-insensitive). A case passes when every expectation of every turn holds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Literal

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.progress import track

from assistant.factory import build_assistant
from assistant.loop import Assistant
from assistant.session import Session
from eval.hygiene import Tally
from eval.turns import TurnResult, run_turn
from kefu.console import console, print_json, settings_of
from kefu.errors import KefuError

Outcome = Literal["answered", "no_match", "handoff", "declined", "refused"]


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    products: Literal["some", "none"] | None = None
    category_any: list[str] = Field(default_factory=list)
    max_price: float | None = None
    intent_any: list[str] = Field(default_factory=list)
    tool_any: list[str] = Field(default_factory=list)
    tool_none: list[str] = Field(default_factory=list)
    outcome: Outcome | None = None
    reply_contains_any: list[str] = Field(default_factory=list)
    reply_excludes: list[str] = Field(default_factory=list)


class CaseTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1)
    expect: Expect = Field(default_factory=Expect)


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    kind: str = "general"
    customer_id: str | None = None
    turns: list[CaseTurn] = Field(min_length=1)


def load_cases(path: Path) -> list[Case]:
    """Read and validate a case file; errors name the line and the field."""
    if not path.is_file():
        raise KefuError(f"No case file {path}; write one case per line as JSON (see `kefu eval cases --help`).")
    cases, ids = [], set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            case = Case.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise KefuError(f"{path} line {n} is not JSON ({exc.msg}); one case per line.") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or "the case"
            raise KefuError(f"{path} line {n}: {where}: {first['msg']}.") from None
        if case.id in ids:
            raise KefuError(f"{path} line {n}: case id {case.id!r} is used twice.")
        ids.add(case.id)
        cases.append(case)
    if not cases:
        raise KefuError(f"{path} holds no cases.")
    return cases


def failures(expect: Expect, turn: TurnResult) -> list[str]:
    """What of ``expect`` the turn did not do (empty when it passed)."""
    out = []
    cards = turn.cards
    if expect.products == "some" and not cards:
        out.append("expected products, showed none")
    if expect.products == "none" and cards:
        out.append(f"expected no products, showed {len(cards)}")
    if expect.category_any:
        wanted = [c.casefold() for c in expect.category_any]
        top = [(c.category or "").casefold() for c in cards[:3]]
        if not any(w in cat for cat in top for w in wanted):
            out.append(f"no card of {expect.category_any} in the first three (got {[c.category for c in cards[:3]]})")
    if expect.max_price is not None:
        over = [c.price for c in cards if c.price is None or c.price > expect.max_price + 1e-9]
        if over:
            out.append(f"cards over ${expect.max_price:g} or unpriced: {over}")
    if expect.intent_any and turn.intent not in expect.intent_any:
        out.append(f"intent {turn.intent!r}, expected one of {expect.intent_any}")
    if expect.tool_any and not set(expect.tool_any) & set(turn.tools):
        out.append(f"tools {turn.tools}, expected one of {expect.tool_any}")
    if expect.tool_none and set(expect.tool_none) & set(turn.tools):
        out.append(f"ran {sorted(set(expect.tool_none) & set(turn.tools))}, expected none of them")
    if expect.outcome and turn.outcome != expect.outcome:
        out.append(f"outcome {turn.outcome!r}, expected {expect.outcome!r}")
    reply = turn.reply.casefold()
    if expect.reply_contains_any and not any(s.casefold() in reply for s in expect.reply_contains_any):
        out.append(f"reply contains none of {expect.reply_contains_any}")
    if bad := [s for s in expect.reply_excludes if s.casefold() in reply]:
        out.append(f"reply contains {bad}")
    return out


def run_cases(assistant: Assistant, cases: list[Case], customer: str | None = None, progress: bool = False) -> dict:
    by_kind: dict[str, list[bool]] = defaultdict(list)
    failed, hygiene, turns = [], Tally(), []
    for case in track(cases, description="cases", console=console, disable=not progress):
        session = Session(customer_id=case.customer_id or customer)
        ok = True
        for i, step in enumerate(case.turns, 1):
            result = run_turn(assistant, session, step.message)
            hygiene.add(result.hygiene, result.message, result.reply)
            turns.append(result.total_ms)
            if reasons := failures(step.expect, result):
                ok = False
                failed.append({"case": case.id, "kind": case.kind, "turn": i, "message": step.message,
                               "reasons": reasons, "reply": result.reply[:400],
                               "cards": [c.title for c in result.cards[:3]]})  # fmt: skip
        by_kind[case.kind].append(ok)
    passed = sum(ok for oks in by_kind.values() for ok in oks)
    return {
        "kind": "cases",
        "cases": len(cases),
        "passed": passed,
        "pass_rate": round(passed / len(cases), 4),
        "by_kind": {k: {"cases": len(v), "pass_rate": round(sum(v) / len(v), 4)} for k, v in sorted(by_kind.items())},
        "failures": failed,
        "hygiene": hygiene.as_json(),
        "turn_ms": sorted(turns),
    }


def cases_command(
    ctx: typer.Context,
    data: Path = typer.Option(Path("eval/cases/dev.jsonl"), "--data", help="Case file (JSON Lines)."),
    customer: str = typer.Option(None, "--customer", help="Customer for cases that name none (default: guest)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run conversation test cases against the assistant: pass rate per kind, each failure's reason, hygiene."""
    cases = load_cases(data)
    report = run_cases(build_assistant(settings_of(ctx)), cases, customer, progress=True)
    report["data"] = str(data)
    if as_json:
        print_json(report)
        return
    console.print(f"{report['passed']}/{report['cases']} cases passed ({report['pass_rate']:.0%})")
    for f in report["failures"]:
        console.print(f"[red]✗[/red] {f['case']} turn {f['turn']}: {'; '.join(f['reasons'])}")
