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

What a conversation adds (``conversations.jsonl``):

- cards: ``category_all`` (every card's category contains one of these), ``category_each`` (each of these is in
  some card's category: one per item of a shopping list; "APPLES|ORGANICS" takes either), ``brand_all`` (every
  card has this brand: "Private" is the store brand), ``brand_none`` (no card has one of these);
- tools: ``tool_count`` ({"search_products": 3}: at least that many calls of each), ``query_contains_any`` (some
  search_products query contains one of these);
- words: ``reply_contains_all``, ``lead_in_contains_any`` / ``lead_in_excludes`` (the reply's lead-in, without
  its list of cards), ``lead_in_category_any`` (a card the lead-in names, such as "the cheapest", is of one of
  these categories);
- against the cards the shopper saw last (the latest earlier turn that showed cards and was not itself a question
  about shown cards, so "how much is the first one?" then "and the second?" both mean the search's cards):
  ``brand_not_shown`` (no card has the first shown card's brand), ``price_vs_shown`` ("lower": every card below
  the dearest shown and their mean below the shown mean; "higher" the mirror), ``size_vs_shown`` ("bigger" |
  "smaller": the mean package size), ``cards_new`` (none of them shown again), ``shown_fact`` (the reply states a
  fact of a shown card: {"fact": "price" | "size" | "brand", "card": 2}, or {"fact": "cheapest"}).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Literal

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rich.progress import track

from assistant.events import price_text
from assistant.loop import Assistant
from assistant.session import Session
from eval.hygiene import Tally
from eval.turns import Card, TurnResult, replay_assistant, run_turn
from kefu.console import console, print_json, settings_of
from kefu.errors import KefuError

Outcome = Literal["answered", "no_match", "handoff", "declined", "refused"]


class ShownFact(BaseModel):
    """A fact of the cards shown before that the reply must state; ``card`` counts from 1."""

    model_config = ConfigDict(extra="forbid")

    fact: Literal["price", "size", "brand", "cheapest"]
    card: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _card_named(self) -> ShownFact:
        if (self.card is None) != (self.fact == "cheapest"):
            raise ValueError("name the card (from 1) for price, size and brand, and none for cheapest")
        return self


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
    category_all: list[str] = Field(default_factory=list)
    category_each: list[str] = Field(default_factory=list)
    brand_all: str | None = None
    brand_none: list[str] = Field(default_factory=list)
    tool_count: dict[str, int] = Field(default_factory=dict)
    query_contains_any: list[str] = Field(default_factory=list)
    reply_contains_all: list[str] = Field(default_factory=list)
    lead_in_contains_any: list[str] = Field(default_factory=list)
    lead_in_excludes: list[str] = Field(default_factory=list)
    lead_in_category_any: list[str] = Field(default_factory=list)
    brand_not_shown: bool = False
    price_vs_shown: Literal["lower", "higher"] | None = None
    size_vs_shown: Literal["bigger", "smaller"] | None = None
    cards_new: bool = False
    shown_fact: ShownFact | None = None


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


def failures(expect: Expect, turn: TurnResult, shown: list[Card] | None = None) -> list[str]:
    """What of ``expect`` the turn did not do (empty when it passed); ``shown``: the cards the shopper saw last."""
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
    return out + _card_failures(expect, cards) + _turn_failures(expect, turn) + _shown_failures(expect, turn, shown)


def _has(text: str | None, wanted: list[str]) -> bool:
    return any(w.casefold() in (text or "").casefold() for w in wanted)


def _card_failures(expect: Expect, cards: list[Card]) -> list[str]:
    out = []
    if expect.category_all and (off := [c.category for c in cards if not _has(c.category, expect.category_all)]):
        out.append(f"cards outside {expect.category_all}: {off}")
    if missing := [w for w in expect.category_each if not any(_has(c.category, w.split("|")) for c in cards)]:
        out.append(f"no card of {missing} (got {sorted({c.category or '' for c in cards})})")
    if expect.brand_all and (
        other := [c.brand for c in cards if (c.brand or "").casefold() != expect.brand_all.casefold()]
    ):
        out.append(f"cards not of brand {expect.brand_all!r}: {other}")
    if bad := [c.brand for c in cards if expect.brand_none and c.brand and _has(c.brand, expect.brand_none)]:
        out.append(f"cards of brand {bad}, expected none of {expect.brand_none}")
    return out


def _turn_failures(expect: Expect, turn: TurnResult) -> list[str]:
    out = []
    if few := {t: n for t, n in expect.tool_count.items() if turn.tools.count(t) < n}:
        out.append(f"tools {turn.tools}, expected at least {few}")
    if expect.query_contains_any and not any(_has(q, expect.query_contains_any) for q in turn.queries):
        out.append(f"search queries {turn.queries}, expected one with one of {expect.query_contains_any}")
    reply, lead_in = turn.reply.casefold(), turn.lead_in.casefold()
    if missing := [s for s in expect.reply_contains_all if s.casefold() not in reply]:
        out.append(f"reply lacks {missing}")
    if expect.lead_in_contains_any and not _has(lead_in, expect.lead_in_contains_any):
        out.append(f"lead-in {turn.lead_in!r} contains none of {expect.lead_in_contains_any}")
    if bad := [s for s in expect.lead_in_excludes if s.casefold() in lead_in]:
        out.append(f"lead-in {turn.lead_in!r} contains {bad}")
    named = [c for c in turn.cards if c.title.casefold() in lead_in]
    if expect.lead_in_category_any and (
        off := [c.title for c in named if not _has(c.category, expect.lead_in_category_any)]
    ):
        out.append(f"lead-in names {off}, not of {expect.lead_in_category_any}")
    return out


# a package size: "18 OZ", "1/2 GAL" (a fraction), "2/40 OZ" (a two-pack), "GAL" (one), "12 CT", "32 LOADS"
_SIZE = re.compile(
    r"(?:(\d+(?:\.\d+)?)\s*/\s*)?(\d+(?:\.\d+)?)?\s*(fl oz|oz|lbs?|gal|ga|qt|pt|ml|loads?|lds?|ltr|lt|l|ct)\b", re.I
)
_OUNCES = {"fl oz": 1, "oz": 1, "lb": 16, "lbs": 16, "gal": 128, "ga": 128, "qt": 32, "pt": 16, "ml": 0.0338,
           "ltr": 33.8, "lt": 33.8, "l": 33.8}  # fmt: skip


def size_of(size: str | None) -> tuple[str, float] | None:
    """A package size as ("oz", ounces) (weight and volume alike), ("ct", count) or ("loads", washes); None when
    unreadable."""
    m = _SIZE.search(size or "")
    if not m:
        return None
    first, amount, unit = m.group(1), float(m.group(2) or 1), m.group(3).lower()
    if first is not None:  # "1/2" is a fraction; "2/40" is two of 40
        amount = float(first) / amount if amount <= 8 else float(first) * amount
    if unit in _OUNCES:
        return "oz", amount * _OUNCES[unit]
    return ("ct", amount) if unit == "ct" else ("loads", amount)


def _prices(card: Card) -> list[float]:
    return [p for p in (card.price, card.price_low, card.price_high) if p is not None]


def _shown_failures(expect: Expect, turn: TurnResult, shown: list[Card] | None) -> list[str]:
    asks = expect.brand_not_shown or expect.price_vs_shown or expect.size_vs_shown or expect.cards_new
    if not (asks or expect.shown_fact):
        return []
    if not shown:
        return ["no cards were shown before this turn"]
    out, cards = [], turn.cards
    if expect.brand_not_shown and (same := [c.title for c in cards if c.brand and c.brand == shown[0].brand]):
        out.append(f"cards of the shown brand {shown[0].brand!r}: {same}")
    if expect.cards_new and (again := [c.title for c in cards if c.product_id in {s.product_id for s in shown}]):
        out.append(f"cards shown again: {again}")
    if expect.price_vs_shown:
        now, before = [c.price for c in cards if c.price is not None], [c.price for c in shown if c.price is not None]
        lower = expect.price_vs_shown == "lower"
        edge = max(before, default=0) if lower else min(before, default=0)
        ok = bool(now and before) and all(p < edge if lower else p > edge for p in now)
        if not (ok and (mean(now) < mean(before) if lower else mean(now) > mean(before))):
            out.append(f"prices {now}, expected {expect.price_vs_shown} than the shown {before}")
    if expect.size_vs_shown:
        now, before = [x for c in cards if (x := size_of(c.size))], [x for c in shown if (x := size_of(c.size))]
        unit = next((u for u, _ in now if u in {v for v, _ in before}), None)
        a, b = [x for u, x in now if u == unit], [x for u, x in before if u == unit]
        if not (a and b and (mean(a) > mean(b) if expect.size_vs_shown == "bigger" else mean(a) < mean(b))):
            out.append(
                f"sizes {[c.size for c in cards]}, expected {expect.size_vs_shown} than {[c.size for c in shown]}"
            )
    if expect.shown_fact and (problem := _fact_failure(expect.shown_fact, turn.reply, shown)):
        out.append(problem)
    return out


NOT_LISTED = ("not list", "n't list", "not given", "no size")
NOT_STORE_BRAND = ("not a store brand", "not the store brand", "not store brand", "isn't a store brand",
                   "isn't the store brand", "is not a store brand", "not our store brand")  # fmt: skip


def _fact_failure(want: ShownFact, reply: str, shown: list[Card]) -> str | None:
    text = reply.casefold()
    if want.fact == "cheapest":
        low = min((p for c in shown for p in _prices(c)), default=None)
        return None if low is None or price_text(low) in text else f"reply lacks the cheapest price {price_text(low)}"
    if want.card > len(shown):
        return f"only {len(shown)} cards were shown, the reply was to name card {want.card}"
    card = shown[want.card - 1]
    if want.fact == "price":
        said = [price_text(p) for p in _prices(card)] or ["not listed"]
        return None if any(s in text for s in said) else f"reply lacks card {want.card}'s price {said[0]}"
    if want.fact == "size":
        said = "".join((card.size or "").casefold().split())
        if said and said in "".join(text.split()) or not said and any(s in text for s in NOT_LISTED):
            return None
        return (
            f"reply lacks card {want.card}'s size {card.size!r}"
            if said
            else f"reply never says card {want.card}'s size is not listed"
        )
    denied = any(s in text for s in NOT_STORE_BRAND)
    if card.brand == "Private":
        ok = "store brand" in text and not denied
    else:
        ok = denied or "national" in text or "name brand" in text
    return None if ok else f"reply misstates card {want.card}'s brand {card.brand!r}"


def run_cases(assistant: Assistant, cases: list[Case], customer: str | None = None, progress: bool = False) -> dict:
    by_kind: dict[str, list[bool]] = defaultdict(list)
    failed, hygiene, turns = [], Tally(), []
    for case in track(cases, description="cases", console=console, disable=not progress):
        session = Session(customer_id=case.customer_id or customer)
        ok, shown = True, []
        for i, step in enumerate(case.turns, 1):
            result = run_turn(assistant, session, step.message)
            hygiene.add(result.hygiene, result.message, result.reply)
            turns.append(result.total_ms)
            if reasons := failures(step.expect, result, shown):
                ok = False
                failed.append({"case": case.id, "kind": case.kind, "turn": i, "message": step.message,
                               "reasons": reasons, "reply": result.reply[:400],
                               "cards": [c.title for c in result.cards[:3]]})  # fmt: skip
            if step.expect.shown_fact is None:  # a question about the shown cards keeps them as "the shown cards"
                shown = result.cards or result.alternatives or shown
        by_kind[case.kind].append(ok)
    passed = sum(ok for oks in by_kind.values() for ok in oks)
    return {
        "kind": "cases",
        "cases": len(cases),
        "passed": passed,
        "pass_rate": round(passed / len(cases), 4),
        "by_kind": {
            k: {"cases": len(v), "passed": sum(v), "pass_rate": round(sum(v) / len(v), 4)}
            for k, v in sorted(by_kind.items())
        },
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
    report = run_cases(replay_assistant(settings_of(ctx)), cases, customer, progress=True)
    report["data"] = str(data)
    if as_json:
        print_json(report)
        return
    console.print(f"{report['passed']}/{report['cases']} cases passed ({report['pass_rate']:.0%})")
    for kind, row in report["by_kind"].items():
        console.print(f"  {kind}: {row['passed']}/{row['cases']} ({row['pass_rate']:.0%})")
    for f in report["failures"]:
        console.print(f"[red]✗[/red] {f['case']} turn {f['turn']}: {'; '.join(f['reasons'])}")
