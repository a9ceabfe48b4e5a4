"""``kefu eval understanding``: each field of the reading, scored for each reader on its own.

A line: ``{"id", "message", "context"?: {"last_query": str | null, "cards": [{"title", "price", "brand", "size"}]},
"expect"?: {field: value}}``. The readers:

- ``rules``: the rule table over the parsers and catalogue words alone (no classifier, no model);
- ``classifier``: the fast intent classifier's best intent (it reads nothing else);
- ``model``: the served model's structured reading: the tuned reader's every field (``kefu llm tune``), or the
  base model's intent, items, budget and need;
- ``combined``: the reading the assistant uses (``Assistant.read``: classifier, model when asked, rule table).

A field is scored for a reader only where that reader reads it, on the lines whose ``expect`` holds it: intent,
budgets (min and max together), refinement, card question, card references (``product_refs``), order id, need
and history by exact match; items by precision / recall / F1 over the lines' item phrases (lower case, each word
without a plural "s"): the products the turn itself names (``Understanding.named``), neither the last search's
words that a refinement carries nor a need's products. With ``--predictions-out`` the combined reading of every
line is written out (``{"id", "understanding"}``), for an outside scorer; ``expect`` is then optional.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, Field, ValidationError
from rich.progress import Progress

from assistant.events import ProductCard
from assistant.factory import build_assistant
from assistant.loop import Assistant
from assistant.session import Session
from assistant.understanding import Slots, Understanding, understand, understand_with_llm
from assistant.understanding.reading import TurnContext, read_turn
from kefu.console import console, print_json, settings_of
from kefu.errors import KefuError, LLMError
from kefu.llm import tune

READERS = ("rules", "classifier", "model", "combined")
EXACT = ("intent", "budget", "refinement", "card_question", "product_refs", "order_id", "need", "history")
READS: dict[str, frozenset[str]] = {  # what each reader reads at all
    "rules": frozenset(EXACT) | {"items"},
    "classifier": frozenset({"intent"}),
    "model": frozenset(EXACT) | {"items"},  # the tuned model reads them all; the base: intent, items, budget, need
    "combined": frozenset(EXACT) | {"items"},
}


class Card(BaseModel):
    title: str = Field(min_length=1)
    price: float | None = None
    brand: str | None = None
    size: str | None = None


class Context(BaseModel):
    last_query: str | None = None
    cards: list[Card] = Field(default_factory=list)


class Expect(BaseModel, extra="forbid"):
    intent: str | None = None
    items: list[str] | None = None
    budget_max: float | None = None
    budget_min: float | None = None
    refinement: str | None = None
    product_refs: list[int] | None = None
    order_id: str | None = None
    card_question: str | None = None
    need: str | None = None
    history: str | None = None


class Line(BaseModel):
    id: str = Field(min_length=1)
    message: str = Field(min_length=1)
    source: str | None = None
    context: Context | None = None
    expect: Expect | None = None


def load_lines(path: Path) -> list[Line]:
    """Every line of the file, validated; a bad line is named with its field and what to fix."""
    if not path.is_file():
        raise KefuError(f"No file {path}; expected JSON Lines with id, message, context?, expect?.")
    lines: list[Line] = []
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            lines.append(Line.model_validate_json(text))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(the line)"
            raise KefuError(f"{path} line {n}: field {where}: {first['msg']}.") from None
    if not lines:
        raise KefuError(f"{path} holds no lines to read.")
    if len({line.id for line in lines}) != len(lines):
        twice = [i for i, c in Counter(line.id for line in lines).items() if c > 1][:3]
        raise KefuError(f"{path}: ids must be unique; repeated: {', '.join(twice)}.")
    return lines


def session_for(line: Line) -> Session:
    """A session as the previous turn would have left it: its query and the cards it showed."""
    session = Session(customer_id=None)
    if line.context is None:
        return session
    if line.context.last_query:
        session.slots = Slots(query=line.context.last_query, items=[line.context.last_query])
        session.intents = ["product_search"]
    cards = [ProductCard(product_id=str(900_000 + i), title=c.title, price=c.price, brand=c.brand, size=c.size)
             for i, c in enumerate(line.context.cards)]  # fmt: skip
    session.remember(cards)
    return session


def _field_values(u: Understanding) -> dict[str, Any]:
    s = u.slots
    return {"intent": u.intent, "items": u.named, "budget": (s.budget_min, s.budget_max),
            "refinement": s.refinement, "card_question": s.card_question, "product_refs": list(s.product_refs),
            "order_id": s.order_id, "need": s.need, "history": s.history}  # fmt: skip


def _expected(e: Expect) -> dict[str, Any]:
    given = e.model_dump(exclude_unset=True)
    out = {k: v for k, v in given.items() if k not in ("budget_min", "budget_max")}
    if "budget_min" in given or "budget_max" in given:
        out["budget"] = (e.budget_min, e.budget_max)
    return out


def _norm(item: str) -> str:
    return " ".join(w.removesuffix("s") for w in re.findall(r"[a-z0-9]+", item.lower()))


def _same(field: str, got: Any, want: Any) -> bool:
    if field == "budget":
        return all((g is None and w is None) or (g is not None and w is not None and abs(g - w) < 0.005)
                   for g, w in zip(got, want, strict=True))  # fmt: skip
    if field in ("need", "order_id") and isinstance(got, str) and isinstance(want, str):
        return got.strip().lower() == want.strip().lower()
    return got == want


class Readers:
    """Each reader's reading of one line, from the real assistant's parts."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    def rules(self, line: Line) -> dict[str, Any]:
        return _field_values(understand(self.assistant.evidence(session_for(line), line.message, classifier=False)))

    def classifier(self, line: Line) -> dict[str, Any] | None:
        """None when no classifier is trained (the line is then not scored for it)."""
        ev = self.assistant.evidence(session_for(line), line.message)
        return {"intent": ev.prior[0]} if ev.prior else None

    def model(self, line: Line) -> dict[str, Any]:
        session = session_for(line)
        if self.assistant.config.tuned_fields is not None:  # the tuned reader: every field, as it answers
            context = TurnContext(line.context.last_query if line.context else None, len(session.candidates))
            t = read_turn(self.assistant.llm, line.message, context)
            return {"intent": t.intent, "items": [i.strip().lower() for i in t.items if i.strip()],
                    "budget": (t.budget_min, t.budget_max), "refinement": t.refinement,
                    "card_question": t.card_question, "product_refs": list(t.product_refs), "order_id": t.order_id,
                    "need": t.need, "history": t.history}  # fmt: skip
        r = understand_with_llm(self.assistant.llm, line.message, session.slots, slots=True)
        items = [i.strip().lower() for i in r.items if i.strip()] or ([r.product.strip().lower()] if r.product else [])
        return {"intent": r.intent, "items": items, "budget": (None, r.max_price), "need": r.need.strip() or None}

    def combined(self, line: Line) -> Understanding:
        return self.assistant.read(session_for(line), line.message)[0]


def score(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """rows: {"expect": {field: value}, "readings": {reader: {field: value} | None}} -> per reader, per field."""
    right: dict[str, Counter] = defaultdict(Counter)
    seen: dict[str, Counter] = defaultdict(Counter)
    items: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        for reader, got in row["readings"].items():
            if got is None:
                continue
            for field, want in row["expect"].items():
                if field not in READS[reader] or field not in got:
                    continue
                if field == "items":
                    g, w = {_norm(i) for i in got["items"]}, {_norm(i) for i in want}
                    items[reader].update(tp=len(g & w), fp=len(g - w), fn=len(w - g))
                    continue
                seen[reader][field] += 1
                right[reader][field] += _same(field, got[field], want)
    out: dict[str, dict[str, Any]] = {}
    for reader in READERS:
        fields: dict[str, Any] = {f: {"n": n, "accuracy": round(right[reader][f] / n, 4)}
                                  for f, n in sorted(seen[reader].items())}  # fmt: skip
        c = items[reader]
        if c:
            p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
            r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            fields["items"] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4)}
        out[reader] = fields
    return out


def run(readers: Readers, lines: list[Line], which: tuple[str, ...], progress: bool = False,
        predictions: Path | None = None) -> dict[str, Any]:  # fmt: skip
    rows, failed = [], Counter()
    out = predictions.open("w") if predictions else None
    calls: dict[str, Callable[[Line], Any]] = {"rules": readers.rules, "classifier": readers.classifier,
                                               "model": readers.model, "combined": readers.combined}  # fmt: skip
    try:
        with Progress(console=console, disable=not progress) as bar:
            task = bar.add_task("turns", total=len(lines))
            for line in lines:
                readings: dict[str, Any] = {}
                for reader in which:
                    try:
                        got = calls[reader](line)
                    except LLMError:  # the model is down for this line: counted, not scored
                        failed[reader] += 1
                        readings[reader] = None
                        continue
                    if isinstance(got, Understanding):
                        if out:
                            out.write(json.dumps({"id": line.id, "understanding": got.model_dump(mode="json")}) + "\n")
                        got = _field_values(got)
                    readings[reader] = got
                if line.expect is not None:
                    rows.append({"expect": _expected(line.expect), "readings": readings})
                bar.advance(task)
    finally:
        if out:
            out.close()
    return {"kind": "understanding", "lines": len(lines), "scored": len(rows), "readers": score(rows),
            "unread": dict(failed)}  # fmt: skip


def understanding_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="JSON Lines: id, message, context?, expect?."),
    predictions_out: Path = typer.Option(None, "--predictions-out", help="Write the combined reading per line."),
    readers: str = typer.Option(",".join(READERS), "--readers", help="Comma-separated: " + ", ".join(READERS)),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    record: bool = typer.Option(
        False, "--record", help="Write the figures into the served tuned model's manifest (`kefu llm tune`)."
    ),
) -> None:
    """Score each field of the reading (intent, items, budgets, refinement, card references, order id …) for the
    rules, the classifier, the served model and the combined reading."""
    which = tuple(r.strip() for r in readers.split(",") if r.strip())
    if unknown := [r for r in which if r not in READERS]:
        raise KefuError(f"Unknown reader {', '.join(unknown)}; use some of {', '.join(READERS)}.")
    if predictions_out is not None and "combined" not in which:
        which += ("combined",)
    lines = load_lines(data)
    settings = settings_of(ctx)
    if record and not settings.reads_tuned:
        raise KefuError("--record writes into the tuned model's manifest, but the tuned model is not the one served "
                        "(run `kefu llm tune`, then `kefu llm serve`; or set KEFU_READER=tuned).")  # fmt: skip
    report = run(Readers(build_assistant(settings)), lines, which, progress=True,
                 predictions=predictions_out) | {"data": str(data)}  # fmt: skip
    report["reader"] = "tuned" if settings.reads_tuned else "base"
    if record:
        tune.record(settings.tuned_model_dir, dev={"data": str(data), "readers": report["readers"]})
    if as_json:
        print_json(report)
        return
    for reader, fields in report["readers"].items():
        shown = ", ".join(f"{f} {v.get('accuracy', v.get('f1'))}" for f, v in fields.items())
        console.print(f"{reader}: {shown or 'nothing scored'}")
