"""The lead-in composed from facts (templates in ``prompts/lead_ins.toml``): what the results are, how many, the
cheapest, the budget honoured, why they suit this shopper. Every value comes from a tool result or from the
shopper's own product words, so it can never echo the message, leak a glyph or state an unreturned offer.

``reply.py`` uses it as the lead-in for the embedded small model, and as the fallback when the gate removes every
sentence a capable model wrote.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from assistant.display import on_topic
from assistant.events import ProductCard, price_text
from assistant.understanding import SHOPPING
from assistant.understanding.acts import need_label
from assistant.understanding.rules import FILLER

if TYPE_CHECKING:
    from assistant.reply import Facts

ASKED_WORDS = 4
_PLAIN = re.compile(r"[^\w\s'&.,%-]")


@cache
def templates() -> dict[str, str]:
    return tomllib.loads(resources.files("assistant").joinpath("prompts/lead_ins.toml").read_text())


def asked(facts: Facts) -> str:
    """The shopper's product words, quoted, or "that" when there are none or too many to repeat."""
    words = [w for w in _PLAIN.sub(" ", facts.understanding.slots.query or "").split() if w.lower() not in FILLER]
    if not words or len(words) > ASKED_WORDS:
        return "that"
    return f'"{" ".join(words)}"'


def limits(facts: Facts) -> str:
    s = facts.understanding.slots
    parts = []
    if s.budget_max is not None:
        parts.append(f" under {price_text(s.budget_max)}")
    if s.budget_min is not None:
        parts.append(f" from {price_text(s.budget_min)}")
    return "".join(parts)


def lowest(card: ProductCard) -> float | None:
    """The lowest price a card shows (a merged card shows its alike products' range)."""
    return card.price_low if card.alike > 1 and card.price_low is not None else card.price


def product(facts: Facts) -> str:
    """What was understood as the product, plain ("peanut butter"), or "" when there is none to name."""
    words = [w for w in _PLAIN.sub(" ", facts.understanding.slots.query or "").split() if w.lower() not in FILLER]
    return " ".join(words) if 0 < len(words) <= ASKED_WORDS + 2 else ""


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _refined(facts: Facts) -> str:
    """The lead-in of a refined search: what changed ("Store-brand peanut butter:")."""
    s, t, name = facts.understanding.slots, templates(), product(facts)
    if not name or "refines-previous-search" not in facts.understanding.trace:
        return ""
    key = None if s.refinement == "none" else f"refined_{s.refinement}"
    if key is None and s.store_brand:
        key = "refined_store_brand"
    if key is None and s.exclude:
        return t["refined_exclude"].format(product=name.capitalize(), words=_joined(s.exclude))
    if key is None:
        key = "refined_limits"
    return t[key].format(product=name, Product=name.capitalize(), limits=limits(facts))


def _for_list(facts: Facts) -> str:
    t, s = templates(), facts.understanding.slots
    missing = [f'"{g.item}"' for g in facts.groups if not g.carried]  # the shopper's words, quoted
    head = t["need"].format(need=need_label(s.need)) if s.need else t["list"]
    if missing and len(missing) == len(facts.groups):
        return t["list_none"].format(items=_joined(missing))
    return head + (" " + t["list_missing"].format(items=_joined(missing)) if missing else "")


def compose(facts: Facts) -> str:
    """The lead-in for this turn's facts (may be empty: the block then speaks for itself)."""
    t = templates()
    if facts.card_answer is not None:
        return facts.card_answer
    tools = {e.name: e for e in facts.tools if e.ok}  # a failed call beside found cards says nothing here
    failed = next((e for e in facts.tools if not e.ok), None)
    if failed is not None and not facts.cards:
        return t["tool_failed"]
    if "my_purchases" in tools:
        d = tools["my_purchases"].data
        if not facts.cards:
            return t["last_order_gone"].format(**d) if d.get("order_id") else t["no_orders"]
        return t["usual"] if d.get("which") == "usual" else t["last_order"].format(**d)
    if facts.groups:
        return _for_list(facts)
    if "handoff_to_human" in tools:
        return t["handoff"]
    if "start_return" in tools:
        return t["return_ready"]
    if "order_status" in tools:
        return t["order"].format(**tools["order_status"].data)
    if "list_my_orders" in tools:
        return t["orders"] if tools["list_my_orders"].data.get("order_ids") else t["no_orders"]
    if "get_my_profile" in tools:
        return t["profile"]
    search = next((e for e in facts.tools if e.data.get("no_match")), None)
    if search is not None:
        if search.data["no_match"] == "outside_limits":
            return t["outside_limits"].format(asked=asked(facts), limits=limits(facts) or " that fits")
        if facts.alternatives:
            return t["not_carried_alternatives"].format(asked=asked(facts))
        return t["not_carried"].format(asked=asked(facts)) + " " + t["not_carried_help"]
    if not facts.cards:
        return (
            t["no_results"].format(asked=asked(facts)) if facts.tools or facts.understanding.intent in SHOPPING else ""
        )
    return _about_cards(facts, tools)


def _about_cards(facts: Facts, tools: dict) -> str:
    t = templates()
    cards = facts.cards
    priced = [c for c in cards if lowest(c) is not None]
    cheapest = min(priced, key=lowest) if priced else None
    if "compare_products" in tools:
        if cheapest is None:
            return t["compare"]
        return t["compare_cheapest"].format(title=cheapest.title, price=price_text(lowest(cheapest)))
    if not facts.tools:  # a question about a product shown before
        c = cards[0]
        return t["product_facts"].format(title=c.title, price=price_text(c.price))
    if "similar_items" in tools:
        return t["similar"]
    if "bought_together" in tools:
        return t["bought_together"]
    if "search_products" not in tools:  # recommendations: the tool's own note says what they are
        note = next((e.data.get("note") for e in facts.tools if e.data.get("note")), "")
        return t["browse"].format(note=note) if note else ""
    s = facts.understanding.slots
    if refined := _refined(facts):
        sentences = [refined]
    elif s.need and product(facts):
        sentences = [t["need_product"].format(Product=product(facts).capitalize(), need=need_label(s.need))]
    else:
        key = "found_one" if len(cards) == 1 else "found_many"
        name = product(facts)
        sentences = [t[key].format(n=len(cards), asked=name or "that", limits=limits(facts))]
    topical = on_topic(priced, s.query or "") or priced[:1]
    cheapest = min(topical, key=lowest) if topical else None
    if cheapest is not None and len(cards) > 1:
        key = "cheapest_from" if cheapest.alike > 1 and cheapest.price_low != cheapest.price_high else "cheapest"
        sentences.append(t[key].format(title=cheapest.title, price=price_text(lowest(cheapest))))
    if any(c.personal for c in cards):
        sentences.append(t["personal"])
    if len(sentences) > 1 and sentences[0].endswith(":"):  # "Store-brand peanut butter. The cheapest is …"
        sentences[0] = sentences[0][:-1] + "."
    return " ".join(sentences)
