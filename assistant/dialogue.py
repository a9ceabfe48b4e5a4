"""The dialogue loop: one turn in, typed events out (``assistant/events.py``).

    understand → plan tool calls → run tools → stream a grounded reply → log

Two planning modes, set per model in settings (``KEFU_PLANNER``): ``structured`` plans the tool calls from the
validated Understanding (works with the 135M model), ``native`` lets a capable served model call the tools
itself through vLLM's tool calling. Both run tools the same way and share the reply and grounding steps.
"""

from __future__ import annotations

import contextlib
import time
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from assistant import store
from assistant.errors import LLMError
from assistant.events import (
    Event,
    ProductCard,
    Products,
    Refused,
    Repaired,
    TextChunk,
    ToolCalled,
    TurnDone,
    Understood,
    price_text,
)
from assistant.grounding import SentenceGate, allowed_facts
from assistant.guardrails import RateLimiter, fence, looks_like_injection
from assistant.llm import LLM, Usage
from assistant.policy import PRICE_SENSITIVE_PRIVATE_SHARE, Treatment, find_coupon, load_rules, treatment_for
from assistant.session import Deps, Services, Session
from assistant.shop_tools import TOOLS
from assistant.tools import run_tool
from assistant.understanding import SHOPPING, Understanding, catalogue_vocabulary, combine, understand_with_llm

Call = tuple[str, dict[str, Any]]


@cache
def messages() -> dict[str, str]:
    return tomllib.loads(resources.files("assistant").joinpath("prompts/messages.toml").read_text())


def _prompt(name: str) -> str:
    return resources.files("assistant").joinpath(f"prompts/{name}").read_text()


class Assistant:
    def __init__(
        self,
        services: Services,
        llm: LLM,
        *,
        mode: str = "structured",
        classifier: Any = None,
        log: Any = None,
        max_chars: int = 2000,
        rate: RateLimiter | None = None,
        tool_choice: str = "auto",
        reads_slots: bool = False,
    ) -> None:
        self.reads_slots = reads_slots
        self.services, self.llm, self.mode, self.tool_choice = services, llm, mode, tool_choice
        self.classifier, self.log, self.max_chars = classifier, log, max_chars
        self.rate = rate or RateLimiter(limit=20, window_s=60)
        self.rules = load_rules()
        with store.connect(services.settings.store_path) as con:
            self.vocabulary = catalogue_vocabulary(con)
            brands = [
                r[0] for r in con.execute("SELECT DISTINCT brand FROM products WHERE brand IS NOT NULL").fetchall()
            ]
        self.brands = {b.casefold(): b for b in brands}  # a brand slot must name one of these

    def turn(self, session: Session, message: str) -> Iterator[Event]:
        started = time.perf_counter()
        session.turn += 1
        timings: dict[str, float] = {}
        refusal = self._guard(session, message)
        if refusal:
            yield refusal
            yield self._finish(session, message, None, "", [], [], refusal.message, timings, started, refused=refusal)
            return

        usage = Usage()  # this turn's tokens, over every request to the model
        understanding, source = self._understand(session, message, timings, usage)
        yield Understood(understanding=understanding, source=source)
        deps = Deps(self.services, session)
        treatment = self._treatment(session)
        calls, fixed = self._plan(understanding, session, treatment, message)
        if self.mode == "native" and understanding.intent in SHOPPING | {"order_status", "return_refund"}:
            calls = self._plan_native(session, message, usage) or calls

        tool_events, cards = [], []
        t0 = time.perf_counter()
        for name, args in calls:
            result = run_tool(TOOLS[name], deps, args)
            event = ToolCalled(
                name=name,
                arguments=args,
                ok=result.ok,
                product_ids=result.product_ids,
                summary=result.text,
                latency_ms=result.latency_ms,
            )
            session.tried.append(
                f"{name}({', '.join(f'{k}={v}' for k, v in args.items())}) -> {'ok' if result.ok else 'failed'}"
            )
            tool_events.append(event)
            yield event
            cards += list(getattr(result.value, "products", []))
        timings["tools_ms"] = _ms(t0)
        if treatment.value_first:
            cards.sort(key=lambda c: (c.price is None, c.price or 0))
        session.remember(cards)  # results of this turn become the list later turns refer to
        if understanding.slots.product_refs and not cards:
            cards = session.resolve_refs(understanding.slots.product_refs)  # shown again, list unchanged
        if cards:
            yield Products(items=cards)
        coupon = self._coupon(session, cards) if treatment.offer_coupon else None

        t0 = time.perf_counter()
        reply, repairs = "", []
        for chunk in self._reply(
            message, understanding, session, tool_events, cards, fixed, coupon, treatment, repairs, usage
        ):
            if not reply:
                timings["first_token_ms"] = _ms(started)
            reply += chunk
            yield TextChunk(text=chunk)
        for what in repairs:
            yield Repaired(what=what)
        timings["reply_ms"] = _ms(t0)
        case = next((e.summary.split()[1] for e in tool_events if e.name == "handoff_to_human" and e.ok), None)
        session.history += [{"role": "user", "content": message[:500]}, {"role": "assistant", "content": reply[:500]}]
        session.history = session.history[-6:]
        session.intents.append(understanding.intent)
        session.slots = understanding.slots
        yield self._finish(
            session,
            message,
            understanding,
            source,
            tool_events,
            cards,
            reply,
            timings,
            started,
            repairs=len(repairs),
            tokens={"prompt": usage.prompt_tokens, "completion": usage.completion_tokens},
            case=case,
        )

    # -- steps --------------------------------------------------------------------------------------------
    def _guard(self, session: Session, message: str) -> Refused | None:
        m = messages()
        if not self.rate.allow(session.conversation_id):  # every message counts, refused ones too
            return Refused(reason="rate_limited", message=m["rate_limited"])
        if not message.strip():
            return Refused(reason="empty", message=m["empty"])
        if len(message) > self.max_chars:
            return Refused(reason="too_long", message=m["too_long"].format(n=len(message), limit=self.max_chars))
        return None

    def _understand(self, session: Session, message: str, timings: dict, usage: Usage) -> tuple[Understanding, str]:
        t0 = time.perf_counter()
        prior = self.classifier.predict([message])[0] if self.classifier is not None else None
        reading = None
        with contextlib.suppress(LLMError):  # the LLM is down: the classifier and the rules carry the turn
            reading = understand_with_llm(self.llm, message, session.slots, self.reads_slots, usage)
        understanding, source = combine(message, reading, prior, session.slots, self.vocabulary)
        if looks_like_injection(message) and understanding.intent in SHOPPING:
            source += "+injection"
        timings["understand_ms"] = _ms(t0)
        return understanding, source

    def _treatment(self, session: Session) -> Treatment:
        segment, price_sensitive = None, False
        if session.customer_id and self.services.profiles is not None:
            try:
                profile = self.services.profiles.get(session.customer_id)
                segment = getattr(profile, "segment", None)
                price_sensitive = (getattr(profile, "private_label_share", 0) or 0) >= PRICE_SENSITIVE_PRIVATE_SHARE
            except Exception:  # noqa: BLE001 - an unknown customer gets the default treatment
                pass
        return treatment_for(segment, price_sensitive, self.rules)

    def _plan(self, u: Understanding, session: Session, treatment: Treatment, message: str) -> tuple[list[Call], str]:
        """Tool calls for this turn from the validated understanding, and any fixed reply text."""
        m, s = messages(), u.slots
        if session.pending_return is not None:
            pending, session.pending_return = session.pending_return, None
            if u.confirm and pending.asked_turn == session.turn - 1:
                return_id = self.services.cases.create_return(
                    session.customer_id, pending.order_id, pending.product_id, pending.reason
                )
                return [], m["return_confirmed"].format(return_id=return_id, order_id=pending.order_id)
            if u.confirm or u.intent == "chitchat":
                return [], m["return_cancelled"]
        if looks_like_injection(message) and u.intent not in ("order_status", "return_refund", "human_handoff"):
            return [], m["injection"]
        if u.intent == "out_of_scope":
            return [], m["out_of_scope"]
        if u.intent == "chitchat":
            return [], m["chitchat"]
        if u.intent in ("delivery", "payment", "account"):
            return [], m[u.intent]
        if u.intent in ("human_handoff", "complaint"):
            return [("handoff_to_human", {"reason": message[:300], "priority": treatment.handoff_priority})], ""
        if u.intent in ("order_status", "return_refund"):
            if session.customer_id is None:
                return [], m["sign_in"]
            if s.order_id:
                tool = "order_status" if u.intent == "order_status" else "start_return"
                return [(tool, {"order_id": s.order_id})], ""
            return [("list_my_orders", {"limit": 5})], ""
        refs = session.resolve_refs(s.product_refs)
        if u.intent == "comparison":
            ids = [c.product_id for c in (refs if len(refs) >= 2 else session.candidates[:2])]
            if len(ids) >= 2:
                return [("compare_products", {"product_ids": ids})], ""
        if refs and s.refinement == "none":
            if u.intent == "recommendation":
                return [("similar_items", {"product_id": refs[0].product_id})], ""
            return [], ""  # a question about a product shown before: answered from that product
        args: dict[str, Any] = {"k": 5}
        if s.budget_max is not None:
            args["max_price"] = s.budget_max
        if s.budget_min is not None:
            args["min_price"] = s.budget_min
        if s.refinement == "cheaper" and session.candidates:
            prices = [c.price for c in session.candidates if c.price is not None]
            if prices:
                args["max_price"] = round(min(prices) - 0.01, 2) if min(prices) > 0.01 else min(prices)
        if s.refinement == "other_brand" and session.candidates:
            args["exclude_brand"] = s.exclude_brand or session.candidates[0].brand
        if s.brand and s.brand.casefold() in self.brands:
            args["brand"] = self.brands[s.brand.casefold()]
        if s.query and (u.intent != "recommendation" or s.refinement != "none" or not treatment.popular_picks):
            return [("search_products", {"query": s.query, **args})], ""
        return [("recommend_for_me", {k: v for k, v in args.items() if k in ("k", "max_price")})], ""

    def _plan_native(self, session: Session, message: str, usage: Usage) -> list[Call]:
        tools = [t.schema() for t in TOOLS.values()]
        history = [
            {"role": "system", "content": _prompt("native_system.md")},
            *session.history,
            {"role": "user", "content": message},
        ]
        try:
            calls, reply = self.llm.tool_calls(history, tools, tool_choice=self.tool_choice, temperature=0)
            usage.add(reply.usage)
        except LLMError:
            return []
        return [(c.name, c.arguments) for c in calls if c.name in TOOLS][:3]

    def _coupon(self, session: Session, cards: list[ProductCard]) -> dict | None:
        if not session.customer_id or not cards:
            return None
        with store.connect(self.services.settings.store_path) as con:
            return find_coupon(con, session.customer_id, [c.product_id for c in cards])

    def _reply(
        self,
        message: str,
        u: Understanding,
        session: Session,
        tool_events: list[ToolCalled],
        cards: list[ProductCard],
        fixed: str,
        coupon: dict | None,
        treatment: Treatment,
        repairs: list[str],
        usage: Usage,
    ) -> Iterator[str]:
        if fixed:
            yield fixed
            return
        failed = [e for e in tool_events if not e.ok]
        facts = "\n".join(fence(e.name, e.summary) for e in tool_events) or fence("context", "no tool was needed")
        instruction = _prompt("reply.md") + ("\n" + " ".join(treatment.tone) if treatment.tone else "")
        msgs = [
            {"role": "system", "content": instruction},
            {"role": "user", "content": f"{fence('shopper message', message[:500])}\nTool results:\n{facts}"},
        ]
        prices, ids = allowed_facts(list(session.seen.values()) + cards)
        gate = SentenceGate(prices, ids)
        intro = ""
        try:
            for chunk in self.llm.stream(msgs, max_tokens=80, temperature=0.2, usage=usage):
                passed = gate.feed(chunk)
                if passed:
                    intro += passed
                    yield passed
            tail = gate.flush()
            intro += tail
            if tail:
                yield tail
        except LLMError:
            intro = messages()["llm_down_intro"] if cards else ""
            if intro:
                yield intro
        repairs += gate.repairs
        block = ""
        if cards:
            block = "\n".join(
                f"{i}. {c.title} — {price_text(c.price)}" + (f" ({c.reason})" if c.reason else "")
                for i, c in enumerate(cards, 1)
            )
        elif failed:
            block = failed[0].summary
        elif tool_events:
            block = tool_events[-1].summary.replace("<<<", "").replace(">>>", "").split("\n", 1)[-1]
        elif u.intent in SHOPPING:
            block = messages()["no_results"]
        if coupon:
            block += (
                f"\nA coupon from your offers applies: coupon {coupon['coupon_upc']} "
                f"(campaign {coupon['campaign_id']}) for product {coupon['product_id']}."
            )
        if block:
            yield ("\n\n" if intro else "") + block

    def _finish(
        self,
        session,
        message,
        understanding,
        source,
        tool_events,
        cards,
        reply,
        timings,
        started,
        refused=None,
        repairs=0,
        tokens=None,
        case=None,
    ) -> TurnDone:
        timings["total_ms"] = _ms(started)
        done = TurnDone(
            conversation_id=session.conversation_id,
            turn=session.turn,
            reply=reply,
            products=cards,
            handoff_case=case,
            timings_ms=timings,
            tokens=tokens or {},
            repairs=repairs,
        )
        if self.log is not None:
            self.log.record(
                message,
                session.customer_id,
                understanding,
                source,
                tool_events,
                done,
                refused=refused.reason if refused else None,
            )
        return done


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
