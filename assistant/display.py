"""Cards a shopper can read and tell apart: a display title made only from the catalogue row's own fields, and
results that would look the same merged into one card with their price range.

    display_title("CHOCOLATE MILK", "FLUID MILK PRODUCTS", "64 OZ", "Private", "CHOCOLATE MILK - …")
    -> "Chocolate milk, 64 oz — store brand"
    display_title("MAINSTREAM", "PASTA SAUCE", "26 OZ", "National", …) -> "Mainstream (pasta sauce), 26 oz"

Every word comes from the row (the product type, with the category where they share no word; without a product
type, the shop's own title; the size; the store-brand label); nothing is invented. Retail shorthand is spelled
out (``catalogue_shorthand.toml``: "PNT BTR/JELLY/JAMS" reads "peanut butter/jelly/jams", so "Peanut butter"
needs no category after it), and what the catalogue's 30-character field cut off is dropped ("… ENTREES/DNRS/N",
"PREMIUM COOKIES (EX: PEPPERIDG"). The raw title stays in the index,
so it is still what search matches. Catalogue text is shop data a shop's import may have filled with anything, so
what a shopper reads of it is ``plain``: no links (nor their text) or images, no chat-template tokens, fences or
HTML tags, and no price (a card states only its catalogue price).
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

from assistant.events import ProductCard

STORE_BRANDS = {"private", "store brand", "own brand"}
_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z0-9]+")
_MARKUP = (  # (pattern, replacement), in order: what catalogue text may not carry onto a shopper's screen
    (re.compile(r"!\[[^\]]*\]\([^)]*\)?"), " "),  # a Markdown image
    (re.compile(r"\[[^\]]*\]\([^)]*\)?"), " "),  # a Markdown link, its text too (it exists to be clicked)
    (re.compile(r"(?:https?:|www\.|javascript:|data:\w+/)\S*", re.I), " "),  # a bare URL
    (re.compile(r"<\|[^|>]{0,40}\|>|<\||\|>|<<<|>>>|‹‹‹|›››|\[/?INST\]|</?s>|</?[a-z][^<>]{0,80}>", re.I), " "),
    (re.compile(r"`{3,}|\{[a-z_]+\}|^\s*#+", re.M), " "),  # code fences, template slots, headings
    (re.compile(r"\$\s?\d[\d,]*(?:\.\d{1,2})?"), " "),  # a price
)


def _stems(text: str) -> set[str]:
    return {t.rstrip("s") for t in _TOKEN.findall(text.lower()) if len(t) > 2}


def on_topic(cards: list[ProductCard], query: str) -> list[ProductCard]:
    """The cards on the topic of the query: those whose title or category has as many of the query's word stems
    as the best card has ("peanut butter": not "Peanuts, 20 oz"; "vitamins": not "Misc dairy refrigerated"),
    among those naming the query's last word when any does (the head of an English noun phrase)."""
    words = [w for w in _TOKEN.findall(query.lower()) if len(w) > 2 and w not in OFF_TOPIC_WORDS]
    stems = {w.rstrip("s")[:5] for w in words}
    head = words[-1].rstrip("s")[:5] if words else ""  # "soft toothbrush": a toothbrush, not a soft drink
    texts = [f"{c.title} {c.category or ''}".lower() for c in cards]
    if head and any(head in t for t in texts):
        cards, texts = zip(*[(c, t) for c, t in zip(cards, texts, strict=True) if head in t], strict=True)
    counts = [sum(stem in t for stem in stems) for t in texts]
    best = max(counts, default=0)
    return [c for c, n in zip(cards, counts, strict=True) if best and n == best]


OFF_TOPIC_WORDS = frozenset("the and for with some any one ones product products item items stuff things".split())


def plain(text: str) -> str:
    """Catalogue text as a shopper may read it: markup, template tokens and prices removed (see the docstring)."""
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return _SPACE.sub(" ", text).strip(" -,.:;")


@cache
def _shorthand() -> dict[str, str]:
    data = tomllib.loads((Path(__file__).with_name("catalogue_shorthand.toml")).read_text(encoding="utf-8"))
    return {word.lower(): spelled for word, spelled in data["shorthand"].items()}


_WORD = re.compile(r"[A-Za-z]+")
_CUT_OFF = re.compile(r"\s*\([^)]*$|/[A-Za-z]{1,2}$")  # an unclosed "(EX: PEPPERIDG", a last "/N" or "/T"


def spelled_out(text: str) -> str:
    """``text`` with its catalogue shorthand spelled out in the same case ("FRZN" -> "FROZEN"), "BREAD:LOAF"
    spaced as "BREAD: LOAF", and the tail the catalogue's field length cut off dropped."""
    text = re.sub(r":(?=\S)", ": ", _CUT_OFF.sub("", text))

    def spell(match: re.Match) -> str:
        word = match.group(0)
        spelled = _shorthand().get(word.lower())
        if spelled is None:
            return word
        spelled = spelled.upper() if word.isupper() else spelled
        return f" {spelled}" if match.start() and text[match.start() - 1].isdigit() else spelled  # "15 PACK"

    return _WORD.sub(spell, text).strip()


def _readable(text: str) -> str:
    """Retail capitals as a sentence ("FROZEN PIZZA" -> "Frozen pizza"); mixed-case text is left as written."""
    text = _SPACE.sub(" ", text).strip(" -,")
    if text.isupper():
        text = text.lower()
        return text[:1].upper() + text[1:]
    return text


def is_store_brand(brand: str | None) -> bool:
    return (brand or "").strip().lower() in STORE_BRANDS


def display_title(product_type: str | None, category: str | None, size: str | None, brand: str | None,
                  title: str) -> str:  # fmt: skip
    """The shopper-facing name of one catalogue row."""
    ptype, category = spelled_out(plain(product_type or "")), spelled_out(plain(category or ""))
    title = plain(title)
    name = _readable(ptype or title)  # no product type: the shop's own title, never just its category
    if ptype and category and not _stems(ptype) & _stems(category):
        name += f" ({_readable(category).lower() if category.isupper() else category})"  # "Mainstream (pasta sauce)"
    size = plain(size or "")
    if size and size.lower() not in name.lower():
        name += f", {size.lower() if size.isupper() else size}"
    if is_store_brand(brand):
        name += " — store brand"
    return name.strip() or "Unnamed product"


def merge_alike(cards: list[ProductCard]) -> list[ProductCard]:
    """Cards with the same display title become one: the first (best ranked) keeps its own id and price and
    gains ``alike`` (how many products it stands for) and the price range over them. Order is kept."""
    groups: dict[str, list[ProductCard]] = {}
    for card in cards:
        groups.setdefault(card.title.casefold(), []).append(card)
    merged = []
    for group in groups.values():
        first = group[0].model_copy()
        prices = [c.price for c in group if c.price is not None]
        if len(group) > 1:
            first.alike = len(group)
            first.price_low, first.price_high = (min(prices), max(prices)) if prices else (None, None)
        merged.append(first)
    return merged
