"""Questions about the cards already shown ("which is cheapest?", "is the second one a store brand?", "what size
is it?"), answered from those cards' own facts, with no new search. What the catalogue does not hold
(ingredients, calories …) is said plainly. Sentences come from ``prompts/card_answers.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from assistant.display import is_store_brand
from assistant.events import ProductCard, price_text
from assistant.lead_in import lowest
from assistant.session import Session
from assistant.sizes import size_of, unit_price
from assistant.understanding import Slots


@cache
def templates() -> dict[str, str]:
    return tomllib.loads(resources.files("assistant").joinpath("prompts/card_answers.toml").read_text())


@dataclass(frozen=True)
class CardAnswer:
    cards: list[ProductCard]  # the cards the answer is about, shown again
    text: str


def answer_about_cards(slots: Slots, session: Session) -> CardAnswer:
    """The answer to a question about the cards shown: about the cards named ("the second one"), else about all."""
    t = templates()
    named = session.resolve_refs(slots.product_refs)
    cards = named or list(session.candidates)
    if not cards:
        return CardAnswer([], t["nothing_shown"])
    q = slots.card_question
    if q in ("cheapest", "priciest"):
        priced = [c for c in cards if lowest(c) is not None]
        if not priced:
            return CardAnswer(cards, t["no_prices"])
        pick = (min if q == "cheapest" else max)(priced, key=lowest)
        return CardAnswer([pick], t[q].format(title=pick.title, price=price_text(lowest(pick))))
    if q in ("biggest", "smallest"):
        sized = [(size_of(c.size or c.title), c) for c in cards]
        sized = [(s[0], c) for s, c in sized if s is not None and s[1] == "oz"]
        if not sized:
            return CardAnswer(cards, t["no_sizes"])
        amount, pick = (max if q == "biggest" else min)(sized, key=lambda x: x[0])
        return CardAnswer([pick], t[q].format(title=pick.title, size=pick.size or f"{amount:g} oz"))
    one = named[:1] or (cards[:1] if len(cards) == 1 else [])
    subjects = one or cards
    lines = [_fact(q, c, slots.asked_fact) for c in subjects]
    if q == "details" and not one:
        return CardAnswer(cards, t["details_many"])
    return CardAnswer(subjects, " ".join(lines))


def _fact(q: str, c: ProductCard, asked: str | None) -> str:
    t = templates()
    if q == "price":
        return t["price"].format(title=c.title, price=price_text(lowest(c)))
    if q == "size":
        return t["size"].format(title=c.title, size=c.size) if c.size else t["size_unknown"].format(title=c.title)
    if q == "brand":
        if c.brand is None:
            return t["brand_unknown"].format(title=c.title)
        return t["store_brand" if is_store_brand(c.brand) else "national_brand"].format(title=c.title)
    if q == "unit_price":
        per = unit_price(c.price, c.size)
        if per is None:
            return t["unit_unknown"].format(title=c.title)
        return t["unit_price"].format(title=c.title, per=f"${per[0]:.3f}", unit=per[1])
    if q == "not_listed":
        fact = asked or "that"
        if fact.lower() in c.title.lower():
            return t["in_name"].format(title=c.title, fact=fact)
        return t["not_listed"].format(title=c.title, fact=fact)
    facts = ", ".join(x for x in (price_text(lowest(c)), c.size, "store brand" if is_store_brand(c.brand) else "",
                                  (c.category or "").lower()) if x)  # fmt: skip
    return t["details"].format(title=c.title, facts=facts)
