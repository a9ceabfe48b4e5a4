"""The reply a shopper reads: a lead-in, then a block rendered from the tool results themselves (the product
list, the order, the case), so every title, price and id shown is real. Canned answers
(``prompts/messages.toml``) need no model.

The lead-in is composed from the facts with templates (``lead_in.py``; the default, for the embedded 135M
model), or written by a capable model (``KEFU_REPLY_LEAD_IN=model``) from the fenced tool results and streamed
through the grounding gate (``grounding.py``); when the gate removes every sentence, the template one is used."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from assistant.events import CardGroup, ProductCard, ToolCalled, card_price_text
from assistant.grounding import SentenceGate, allowed_facts, check_sentence, gate_lines
from assistant.guardrails import fence
from assistant.lead_in import compose, templates
from assistant.services import Coupon
from assistant.understanding import Understanding
from kefu.errors import LLMError
from kefu.llm.client import LLM, Usage


@cache
def messages() -> dict[str, str]:
    return tomllib.loads(resources.files("assistant").joinpath("prompts/messages.toml").read_text())


def prompt(name: str) -> str:
    return resources.files("assistant").joinpath(f"prompts/{name}").read_text()


@dataclass
class Facts:
    """Everything one reply may draw on."""

    message: str
    understanding: Understanding
    tools: list[ToolCalled]
    cards: list[ProductCard]
    known: list[ProductCard]  # every product shown this session: prices and ids the lead-in may state
    answer: str | None = None  # a canned answer (messages.toml key)
    coupon: Coupon | None = None
    tone: list[str] = field(default_factory=list)
    alternatives: bool = False  # the cards are related alternatives: the shop does not carry what was asked
    language: str = "en"  # the shopper's (assistant/language.py); a capable model answers in it
    groups: list[CardGroup] = field(default_factory=list)  # a list's items, each with its cards
    card_answer: str | None = None  # the answer to a question about the cards shown (assistant/card_answers.py)


class Listing(str):
    """The reply's plain-text list of the cards (its last chunk): pages that draw the cards leave it out."""


def write_reply(llm: LLM, facts: Facts, usage: Usage, repairs: list[str], lead_in: str = "template") -> Iterator[str]:
    """Yield the reply's chunks; sentences the gate removed are appended to ``repairs``. ``lead_in``:
    "template" (composed from the facts) or "model" (the model's sentences that pass the gate). The list of the
    cards comes last, as one ``Listing`` chunk."""
    m = messages()
    if facts.answer == "chitchat":
        yield m[_chitchat_kind(facts.message)]
        return
    if facts.answer:
        yield m[facts.answer]
        return
    confirmed = next((e for e in facts.tools if e.name == "confirm_return" and e.ok), None)
    if confirmed is not None:
        yield gate_lines(m["return_confirmed"].format(**confirmed.data), repairs)
        return
    intro = ""
    if lead_in == "model":
        for chunk in _model_lead_in(llm, facts, usage, repairs):
            intro += chunk
            yield chunk
    if not intro.strip():
        intro = gate_lines(compose(facts), repairs)  # filled from tool data and the shopper's words: gated too
        yield intro
    block = _block(facts, repairs)
    if block:
        yield Listing(("\n\n" if intro else "") + block)


_THANKS = re.compile(r"\b(thanks?|thank you|thx|ty|cheers|great|brilliant|perfect|awesome|appreciate)\b", re.I)
_BYE = re.compile(r"\b(bye|goodbye|see you|good night|that's all|that is all)\b", re.I)


_HELLO = re.compile(r"\b(hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening)|greetings|how are you)\b", re.I)


def _chitchat_kind(message: str) -> str:
    """Greeting, thanks, goodbye or a plain acknowledgement ("ok", "sounds good"): the canned answer that fits."""
    if _BYE.search(message):
        return "chitchat_bye"
    if _THANKS.search(message):
        return "chitchat_thanks"
    return "chitchat" if _HELLO.search(message) or len(message.split()) > 6 else "chitchat_ack"


def _model_lead_in(llm: LLM, facts: Facts, usage: Usage, repairs: list[str]) -> Iterator[str]:
    results = "\n".join(fence(e.name, e.summary) for e in facts.tools) or fence("context", "no tool was needed")
    instruction = prompt("reply.md") + ("\n" + " ".join(facts.tone) if facts.tone else "")
    if facts.language != "en":
        instruction += f"\nWrite in the shopper's language (ISO code {facts.language})."
    request = [
        {"role": "system", "content": instruction},
        {"role": "user", "content": f"{fence('shopper message', facts.message[:500])}\nTool results:\n{results}"},
    ]
    prices, ids = allowed_facts(facts.known + facts.cards)
    s = facts.understanding.slots
    prices |= {f"{x:.2f}" for x in (s.budget_max, s.budget_min) if x is not None}  # the shopper's own figures
    gate = SentenceGate(prices, ids, message=facts.message, offers=facts.coupon is not None)
    try:
        for chunk in llm.stream(request, max_tokens=80, temperature=0.2, usage=usage):
            if passed := gate.feed(chunk):
                yield passed
        if tail := gate.flush():
            yield tail
    except LLMError:
        if facts.cards:
            yield templates()["llm_down"]
    repairs += gate.repairs


def _block(facts: Facts, repairs: list[str]) -> str:
    """What the tools returned, rendered from their data (never from model text), through the gate: a failed
    tool's message as strictly as a model sentence (the model's arguments steered that call), the rest line by line
    for links and glyphs (catalogue and order text is shop data)."""
    failed = [e for e in facts.tools if not e.ok]
    block = ""
    if facts.cards and facts.groups:
        block = _grouped(facts)
    elif facts.cards:
        block = "\n".join(_card_line(i, c) for i, c in enumerate(facts.cards, 1))
    elif failed:
        prices, ids = allowed_facts(facts.known + facts.cards)
        block = gate_lines(failed[0].summary, repairs, lambda line: check_sentence(line, prices, ids))
    elif (last := facts.tools[-1] if facts.tools else None) is not None and last.name in SHOWN_AS_TEXT:
        block = unfenced(last.summary)
    elif last is not None and last.name == "start_return":
        d = last.data
        block = f"Return: item {d['product_id']} of order {d['order_id']}." if d.get("product_id") else (
            f"Return: the whole order {d['order_id']}.")  # fmt: skip
    if facts.coupon:
        c = facts.coupon
        block += (
            f"\nA coupon from your offers applies: coupon {c.coupon_upc} (campaign {c.campaign_id}) "
            f"for product {c.product_id}."
        )
    return gate_lines(block, repairs).strip()


def _card_line(i: int, c: ProductCard) -> str:
    return f"{i}. {c.title} — {card_price_text(c)}" + (f" ({c.reason})" if c.reason else "")


def _grouped(facts: Facts) -> str:
    """The cards under each item of the list, numbered on through the groups (so "the fourth one" still works)."""
    by_id = {c.product_id: c for c in facts.cards}
    numbers = {c.product_id: i for i, c in enumerate(facts.cards, 1)}
    parts, done = [], set()
    for g in facts.groups:
        ids = [p for p in g.product_ids if p in by_id and p not in done]
        if not g.carried or not ids:
            continue
        done |= set(ids)
        parts.append(f"{g.item.capitalize()}:\n" + "\n".join(_card_line(numbers[p], by_id[p]) for p in ids))
    return "\n\n".join(parts)


def unfenced(text: str) -> str:
    """A tool summary without the fence around it (its first line is the fence's label when fenced)."""
    if text.startswith("<<<"):
        text = text.split("\n", 1)[-1]
    return text.replace(">>>", "").strip()


SHOWN_AS_TEXT = {"list_my_orders", "order_status", "handoff_to_human", "get_my_profile"}
