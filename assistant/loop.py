"""The dialogue loop: one turn in, typed events out (``assistant/events.py``).

    guard → understand → plan → run tools → stream a grounded reply → log

Planning is ``structured`` (``assistant/planner.py``: tool calls from the validated Understanding; works with
the 135M model) or ``native`` (``assistant/native.py``: the served model calls tools in a bounded loop).
Every tool runs through ``run_tool`` and yields a ``ToolCalled`` event carrying its typed result, so the UI,
the API, the log and the eval read data, never text.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from assistant.actions import Action, label, plan_action, problem, understood
from assistant.card_answers import answer_about_cards
from assistant.events import (
    CardGroup,
    Event,
    Outcome,
    ProductCard,
    Products,
    Refused,
    Repaired,
    TextChunk,
    ToolCalled,
    TurnDone,
    Understood,
)
from assistant.guardrails import RateLimiter, defang, fence, looks_like_injection
from assistant.language import detect
from assistant.native import native_calls
from assistant.planner import CONFIRM_RETURN, Plan, plan_turn
from assistant.policy import PRICE_SENSITIVE_PRIVATE_SHARE, Treatment, load_rules, treatment_for
from assistant.reply import Facts, Listing, messages, write_reply
from assistant.services import Coupon, Services
from assistant.session import Deps, Session
from assistant.shop_tools import TOOLS
from assistant.tools import ToolResult, run_tool
from assistant.understanding import SHOPPING, Evidence, Slots, Understanding, understand, understand_with_llm
from assistant.understanding.reading import TurnContext, read_turn
from assistant.understanding.rules import parse_rules
from assistant.understanding.spine import needs_model
from kefu.errors import KefuError, LLMError
from kefu.llm.client import LLM, Usage
from kefu.records.conversations import ConversationLog, ToolCallRecord, TurnRecord
from kefu.settings import Thresholds

NATIVE_INTENTS = SHOPPING | {"order_status", "return_refund"}


class IntentPrior(Protocol):
    """The fast intent classifier's interface: (intent, probability) per text."""

    def predict_top(self, texts: list[str], k: int = 3) -> list[list[tuple[str, float]]]: ...


@dataclass
class LoopConfig:
    mode: str = "structured"  # or "native"
    tool_choice: str = "auto"  # native mode's first round
    native_max_steps: int = 3
    reads_slots: bool = False  # a capable model also fills product words, brand and budget
    tuned_fields: frozenset[str] | None = None  # the served model is the tuned reader; the fields it decides
    lead_in: str = "template"  # or "model": the served model writes the reply's first sentence (gated)
    thresholds: Thresholds = field(default_factory=Thresholds)  # the understanding step's (kefu.settings)
    languages: tuple[str, ...] = ("en",)  # what the served model reads; other messages get an honest answer
    max_chars: int = 2000


@dataclass
class Turn:
    """What one turn has gathered so far."""

    message: str
    started: float = field(default_factory=time.perf_counter)
    understanding: Understanding | None = None
    source: str = ""
    tools: list[ToolCalled] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)


class Assistant:
    def __init__(
        self,
        services: Services,
        llm: LLM,
        config: LoopConfig | None = None,
        *,
        classifier: IntentPrior | None = None,
        log: ConversationLog | None = None,
        rate: RateLimiter | None = None,
    ) -> None:
        self.services, self.llm, self.config = services, llm, config or LoopConfig()
        self.classifier, self.log = classifier, log
        self.rate = rate or RateLimiter(limit=20, window_s=60)
        self.rules = load_rules()
        self.lexicon = services.catalogue.lexicon()
        self.brands = {b.casefold(): b for b in services.catalogue.brands()}  # a brand slot must name one

    def turn(self, session: Session, message: str, action: Action | None = None) -> Iterator[Event]:
        """One turn. With a typed ``action`` (a page's card button or chip: ``assistant/actions.py``) the
        understanding step is skipped: the action is the understanding, ``message`` only its shown label."""
        session.turn += 1
        if action is not None:
            message = message.strip() or label(action, session.seen)
        turn = Turn(message)
        if refusal := self._guard(session, message, action):
            yield refusal
            yield self._finish(session, turn, refusal.message, [], "refused", refused=refusal.reason)
            return

        language = detect(message) if action is None else "en"
        if language not in self.config.languages:
            yield from self._other_language(session, turn, message, language)
            return

        flagged = action is None and looks_like_injection(message)
        if action is not None:  # no classifier, no model reading: the page said what it wants
            turn.understanding, turn.source = understood(action, session), f"action:{action.kind}"
        else:
            turn.understanding, turn.source = self._understand(session, message, turn)
        u = turn.understanding
        flags = ["injection"] if flagged and u.intent in SHOPPING else []
        yield Understood(understanding=u, source=turn.source, flags=flags)
        turn.source += "".join(f"+{f}" for f in flags)  # the log keeps what the shopper's stream does not say
        treatment = self._treatment(session)
        deps = Deps(self.services, session)

        t0 = time.perf_counter()
        answer: str | None = None  # a canned reply the plan chose
        about_cards = False  # the plan answers from the cards shown before
        native = self.config.mode == "native" and u.intent in NATIVE_INTENTS and not flagged and action is None
        try:
            if native:
                yield from self._native(session, message, deps, turn)
        except LLMError:  # the server is down: unless tools already ran, the structured plan carries the turn
            native = bool(turn.tools)
        if native and self.config.tool_choice == "required" and not any(t.ok for t in turn.tools):
            # forced, the model still produced no usable call: the structured plan carries the turn when it made
            # none, or when it only searched badly on a shopping turn (searches change nothing); a failed order or
            # return call is answered as failed, never replaced by another action
            native = bool(turn.tools) and u.intent not in SHOPPING
        if not native:
            if action is not None:
                plan = Plan(plan_action(action, session, self.brands))
            else:
                plan = plan_turn(u, session, treatment, message, flagged, self.brands)
            if session.pending_return is not None and CONFIRM_RETURN not in plan.calls:
                session.pending_return = None  # any answer but "yes" drops the return asked for last turn
            answer, about_cards = plan.answer, plan.about_cards
            for name, args in plan.calls:
                yield self._call(deps, turn, name, args)
        turn.timings["tools_ms"] = _ms(t0)

        groups = card_groups(turn.tools)
        cards = list({c.product_id: c for e in turn.tools for c in e.products}.values())  # once each, in order
        if treatment.value_first and not groups:
            cards.sort(key=lambda c: (c.price is None, c.price or 0))
        card_answer = None
        if about_cards:  # shown again, the list later turns refer to unchanged
            card_answer = answer_about_cards(u.slots, session)
            cards = card_answer.cards
        else:
            session.remember(cards)  # results of this turn become the list later turns refer to
        if u.slots.product_refs and not cards:
            cards = session.resolve_refs(u.slots.product_refs)
        alternatives = bool(cards) and _no_match(turn.tools) and any(t.data.get("alternatives") for t in turn.tools)
        alternatives = alternatives and not groups  # a list's missing item is named; its others are matches
        if cards:
            yield Products(items=cards, alternatives=alternatives, groups=groups)
        coupon = None
        if treatment.offer_coupon and session.customer_id and cards:
            coupon = self.services.orders.coupon_for(session.customer_id, [c.product_id for c in cards])

        t0 = time.perf_counter()
        facts = Facts(message, u, turn.tools, cards, list(session.seen.values()), answer, coupon, treatment.tone,
                      alternatives=alternatives, language=language, groups=groups,
                      card_answer=card_answer.text if card_answer else None)  # fmt: skip
        reply, lead_in, repairs = "", "", []
        for chunk in write_reply(self.llm, facts, turn.usage, repairs, self.config.lead_in):
            if not reply:
                turn.timings["first_token_ms"] = _ms(turn.started)
            reply += chunk
            listing = isinstance(chunk, Listing)
            lead_in += "" if listing else chunk
            yield TextChunk(text=chunk, listing=listing)
        for what in repairs:
            yield Repaired(what=what)
        turn.timings["reply_ms"] = _ms(t0)
        session.history += history_entries(message, reply)
        session.history = session.history[-6:]
        session.intents.append(u.intent)
        if u.goal is not None:
            session.goals.append(u.goal)
        session.slots = u.slots
        outcome = _outcome(u, answer, turn.tools, cards, groups)
        yield self._finish(
            session,
            turn,
            reply,
            cards,
            outcome,
            repairs=len(repairs),
            coupon=coupon,
            lead_in=lead_in.strip(),
            groups=groups,
        )

    # -- steps --------------------------------------------------------------------------------------------
    def _other_language(self, session: Session, turn: Turn, message: str, language: str) -> Iterator[Event]:
        """A language the model cannot read: say so honestly, with any budget the parsers could still read."""
        budget = parse_rules(message).get("budget_max")
        turn.understanding = Understanding(intent="out_of_scope", slots=Slots(budget_max=budget))
        turn.source = f"language:{language}"
        yield Understood(understanding=turn.understanding, source=turn.source)
        seen = messages()["other_language_budget"].format(budget=budget) if budget is not None else ""
        reply = messages()["other_language"].format(budget=seen)
        yield TextChunk(text=reply)
        session.history += history_entries(message, reply)
        session.history = session.history[-6:]
        yield self._finish(session, turn, reply, [], "declined")

    def _guard(self, session: Session, message: str, action: Action | None = None) -> Refused | None:
        m = messages()
        if not self.rate.allow(session.conversation_id):  # every message counts, refused ones too
            return Refused(reason="rate_limited", message=m["rate_limited"])
        if action is not None and (wrong := problem(action, session)):
            return Refused(reason="invalid_action", message=wrong)
        if not message.strip():
            return Refused(reason="empty", message=m["empty"])
        if len(message) > self.config.max_chars:
            return Refused(reason="too_long", message=m["too_long"].format(n=len(message), limit=self.config.max_chars))
        return None

    def _understand(self, session: Session, message: str, turn: Turn) -> tuple[Understanding, str]:
        t0 = time.perf_counter()
        understanding, source = self.read(session, message, turn.usage)
        turn.timings["understand_ms"] = _ms(t0)
        return understanding, source

    def evidence(self, session: Session, message: str, classifier: bool = True) -> Evidence:
        """What the understanding step knows of this turn before the model is asked: the classifier's top intents
        (``classifier=False``: none), the parsers, catalogue words, the session's previous reading and cards."""
        intents = self.classifier.predict_top([message], k=3)[0] if classifier and self.classifier is not None else []
        lexicon, catalogue = self.lexicon, self.services.catalogue
        return Evidence(
            message, None, intents, previous=session.slots, cards=session.candidates,
            in_context=bool(session.slots and session.slots.products()) or bool(SHOPPING & set(session.intents[-3:])),
            last_intent=session.intents[-1] if session.intents else None, goals=session.goals[-6:],
            vocabulary=lexicon.vocabulary, compounds=lexicon.compounds, known=lexicon.known,
            carries=catalogue.carries, related=catalogue.related, thresholds=self.config.thresholds,
        )  # fmt: skip

    def read(self, session: Session, message: str, usage: Usage | None = None) -> tuple[Understanding, str]:
        """The turn's reading as the assistant decides it, and which readers took part (llm, classifier, rules)."""
        evidence = self.evidence(session, message)
        # the small model reads the intent only: it is not asked when a sure classifier or the turn's own words
        # (a list, a question about the cards, a refinement …) decide anyway (one request less); a capable model
        # still reads the slots
        if self.config.tuned_fields is not None:  # the tuned reader reads every field; the rules check each
            with contextlib.suppress(LLMError):
                context = TurnContext(session.slots.query if session.slots else None, len(session.candidates))
                tuned = read_turn(self.llm, message, context, usage)
                evidence = evidence.with_tuned(tuned, self.config.tuned_fields)
        elif self.config.reads_slots or needs_model(evidence):
            with contextlib.suppress(LLMError):  # the LLM is down: the classifier and the rules carry the turn
                reading = understand_with_llm(self.llm, message, session.slots, self.config.reads_slots, usage)
                evidence = evidence.with_reading(reading)
        source = "llm" if evidence.reading is not None else ("classifier" if evidence.intents else "rules")
        return understand(evidence), source

    def _treatment(self, session: Session) -> Treatment:
        segment, price_sensitive = None, False
        if session.customer_id and self.services.profiles is not None:
            with contextlib.suppress(KefuError, KeyError):  # an unknown customer gets the default treatment
                profile = self.services.profiles.get(session.customer_id)
                segment = profile.segment
                price_sensitive = (getattr(profile, "private_label_share", 0) or 0) >= PRICE_SENSITIVE_PRIVATE_SHARE
        return treatment_for(segment, price_sensitive, self.rules)

    def _native(self, session: Session, message: str, deps: Deps, turn: Turn) -> Iterator[ToolCalled]:
        def run(name: str, args: dict[str, Any]) -> ToolResult:
            if name not in TOOLS:  # the made-up name is not repeated: the shopper may see this text
                return ToolResult(False, None, f"There is no such tool; use one of: {', '.join(TOOLS)}.", 0)
            return run_tool(TOOLS[name], deps, args)

        steps = native_calls(
            self.llm, session.history, message, TOOLS, run,
            max_steps=self.config.native_max_steps, tool_choice=self.config.tool_choice, usage=turn.usage,
        )  # fmt: skip
        for name, args, result in steps:
            yield self._record(deps, turn, name, args, result)

    def _call(self, deps: Deps, turn: Turn, name: str, args: dict[str, Any]) -> ToolCalled:
        return self._record(deps, turn, name, args, run_tool(TOOLS[name], deps, args))

    def _record(self, deps: Deps, turn: Turn, name: str, args: dict[str, Any], result: ToolResult) -> ToolCalled:
        event = ToolCalled(
            name=name,
            arguments=args,
            ok=result.ok,
            product_ids=[p.product_id for p in result.products],
            products=result.products,
            summary=result.text,
            data=result.data,
            latency_ms=result.latency_ms,
        )
        shown = ", ".join(f"{k}={v}" for k, v in args.items())
        deps.session.tried.append(f"{name}({shown}) -> {'ok' if result.ok else 'failed'}")
        turn.tools.append(event)
        return event

    def _finish(self, session: Session, turn: Turn, reply: str, cards: list[ProductCard], outcome: Outcome,
                refused: str | None = None, repairs: int = 0, coupon: Coupon | None = None,
                lead_in: str | None = None, groups: list[CardGroup] | None = None) -> TurnDone:  # fmt: skip
        turn.timings["total_ms"] = _ms(turn.started)
        done = TurnDone(
            conversation_id=session.conversation_id,
            turn=session.turn,
            reply=reply,
            lead_in=reply if lead_in is None else lead_in,
            products=cards,
            groups=groups or [],
            handoff_case=_data(turn.tools, "handoff_to_human", "case_id"),
            return_id=_data(turn.tools, "confirm_return", "return_id"),
            outcome=outcome,
            coupon=asdict(coupon) if coupon else None,
            timings_ms=turn.timings,
            tokens={"prompt": turn.usage.prompt_tokens, "completion": turn.usage.completion_tokens},
            repairs=repairs,
        )
        if self.log is not None:
            self.log.record(
                TurnRecord(
                    conversation_id=done.conversation_id,
                    turn=done.turn,
                    customer_id=session.customer_id,
                    message=turn.message,
                    reply=reply,
                    understanding=turn.understanding.model_dump(mode="json") if turn.understanding else None,
                    source=turn.source,
                    product_ids=[p.product_id for p in cards],
                    card_prices=[p.price for p in cards],
                    outcome=outcome,
                    repairs=repairs,
                    refused=refused,
                    tokens=done.tokens,
                    timings_ms=done.timings_ms,
                    handoff_case=done.handoff_case,
                    tools=[
                        ToolCallRecord(t.name, t.arguments, t.ok, t.product_ids, t.latency_ms, t.summary)
                        for t in turn.tools
                    ],
                )
            )
        return done


CATALOGUE_TOOLS = {"search_products", "recommend_for_me", "similar_items", "bought_together", "compare_products"}


def _outcome(
    u: Understanding, answer: str | None, tools: list[ToolCalled], cards: list[ProductCard], groups: list[CardGroup]
) -> Outcome:
    """What the turn came to, as data for the UI, the log and the eval (a list with any item found is answered)."""
    if any(g.carried for g in groups):
        return "answered"
    if answer in ("out_of_scope", "injection"):
        return "declined"
    if _data(tools, "handoff_to_human", "case_id"):
        return "handoff"
    if _no_match(tools) or (
        u.intent in SHOPPING and not cards and any(t.name in CATALOGUE_TOOLS and t.ok for t in tools)
    ):
        return "no_match"
    return "answered"


def card_groups(tools: list[ToolCalled]) -> list[CardGroup]:
    """One group per search of a turn that searched for several items (a shopping list, a need), else none."""
    searches = [t for t in tools if t.name == "search_products" and t.ok]
    if len(searches) < 2:
        return []
    return [
        CardGroup(item=str(t.arguments.get("query", "")), product_ids=t.product_ids,
                  carried=bool(t.products) and t.data.get("no_match") != "not_carried")
        for t in searches
    ]  # fmt: skip


def history_entries(message: str, reply: str) -> list[dict[str, str]]:
    """One turn as it re-enters later prompts (the native planner reads the history): the reply carries product
    titles and order lines, shop data, so it is fenced; chat-template tokens in the message are broken."""
    said, shown = defang(message[:500]), fence("reply", reply[:500])
    return [{"role": "user", "content": said}, {"role": "assistant", "content": shown}]


def _no_match(tools: list[ToolCalled]) -> bool:
    """A catalogue call found nothing that matches what was asked (perhaps related alternatives)."""
    return any(t.name in CATALOGUE_TOOLS and t.ok and t.data.get("no_match") for t in tools)


def _data(tools: list[ToolCalled], name: str, key: str) -> str | None:
    return next((t.data[key] for t in tools if t.name == name and t.ok and key in t.data), None)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
