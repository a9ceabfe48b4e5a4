"""``Evidence``: everything the understanding step knows about one turn, gathered once, before any rule runs:
the model's reading, the classifier's top intents, what the parsers found, catalogue words, the previous turn's
reading and cards, and the session's context. The rule table (``spine.py``) reads only this."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rapidfuzz import fuzz

from assistant.understanding import acts, phrases
from assistant.understanding.catalogue import Lexicon, catalogue_terms
from assistant.understanding.reading import LLMReading, TurnReading
from assistant.understanding.rules import parse_rules
from assistant.understanding.schema import CardQuestion, History, Slots
from kefu.settings import Thresholds


class ShownCard(Protocol):
    """What the understanding step may know of a card shown last turn."""

    title: str
    price: float | None
    brand: str | None
    size: str | None
    category: str | None


def _a_list(found: list[str], lex: Lexicon, refining: set[str]) -> list[str]:
    """The phrases as a shopping list: two or more that name products, the refining ones out ("anything more
    premium? price isnt an issue" is one refinement, not a list)."""
    listed = [p for p in found if not all(w in refining or w.rstrip("s") in refining for w in p.split())]
    return listed if sum(phrases.names_product(p, lex) for p in listed) >= 2 else []


def _never(_: str) -> bool:
    return False


def _nothing(_: str) -> list[str]:
    return []


@dataclass(frozen=True)
class Evidence:
    message: str
    reading: LLMReading | None = None  # the served model's reading; None when it was not asked or is down
    intents: Sequence[tuple[str, float]] = ()  # the classifier's top intents, best first
    previous: Slots | None = None  # the previous turn's reading
    cards: Sequence[ShownCard] = ()  # the cards shown last, in order ("the second one")
    in_context: bool = False  # the conversation is already about products
    last_intent: str | None = None  # the previous turn's intent
    goals: Sequence[str] = ()  # the conversation's goal at each turn before, oldest first (``goal.py``)
    vocabulary: frozenset[str] = frozenset()  # words naming the catalogue's categories and product types
    compounds: frozenset[str] = frozenset()  # catalogue names holding "and" ("macaroni and cheese")
    known: frozenset[str] = frozenset()  # every word of the catalogue's priced products (titles, types)
    carries: Callable[[str], bool] = _never  # the catalogue has a match for these product words
    related: Callable[[str], list[str]] = _nothing  # product types closest in meaning to a need
    thresholds: Thresholds = field(default_factory=Thresholds)
    tuned: TurnReading | None = None  # the tuned model's whole reading (``with_tuned``)
    tuned_fields: frozenset[str] = frozenset()  # the fields it decides, each where the rules accept it
    # derived from the message (filled in __post_init__)
    parsed: dict[str, Any] = field(default_factory=dict)
    phrases: list[str] = field(default_factory=list)  # the product phrases the turn names (``phrases.py``)
    words: str = ""  # product words (the phrases' words, each once)
    new_words: str = ""  # ... less the words that only refine ("store brand", "bigger")
    terms: list[str] = field(default_factory=list)  # words naming a catalogue category or product type
    items: list[str] = field(default_factory=list)  # a shopping list's items: the phrases when two or more
    need: str | None = None
    card_question: CardQuestion = "none"
    asked_fact: str | None = None
    history: History = "none"

    def __post_init__(self) -> None:
        text = self.message
        question, fact = acts.card_question(text)
        lex = self.lexicon
        found = phrases.items(text, lex, self.carries)
        words = " ".join(dict.fromkeys(w for p in found for w in p.split() if w != "and" or len(found) == 1))
        refining = set(acts.words()["refining"])
        derived = {
            "parsed": parse_rules(text),
            "phrases": found,
            "words": words,
            "new_words": " ".join(w for w in words.split() if w not in refining and w.rstrip("s") not in refining),
            "terms": catalogue_terms(text, self.vocabulary),
            "items": _a_list(found, lex, refining),
            "need": acts.need_of(text, lambda p: all(phrases.knows(w, lex) for w in p.split())),
            "card_question": question,
            "asked_fact": fact,
            "history": acts.history_question(text),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @property
    def lexicon(self) -> Lexicon:
        return Lexicon(vocabulary=self.vocabulary, known=self.known or self.vocabulary, compounds=self.compounds)

    def with_reading(self, reading: LLMReading) -> Evidence:
        """The same evidence with the model's reading added (the parsers' results are kept, not run again)."""
        new = copy.copy(self)
        object.__setattr__(new, "reading", reading)
        return new

    def with_tuned(self, reading: TurnReading, fields: frozenset[str]) -> Evidence:
        """The evidence with the tuned model's reading in place of the parsers' for ``fields``, each only where the
        rules accept it (see ``accepted``); the model's intent is kept as its reading."""
        new = copy.copy(self)
        taken = frozenset(f for f in fields if accepted(self, reading, f))
        object.__setattr__(new, "reading", LLMReading(intent=reading.intent))
        object.__setattr__(new, "tuned", reading)
        object.__setattr__(new, "tuned_fields", taken)
        parsed = dict(self.parsed)
        if "items" in taken:
            items = [i.strip().lower() for i in reading.items if i.strip()]
            object.__setattr__(new, "phrases", items)
            object.__setattr__(new, "items", items if len(items) > 1 else [])
            object.__setattr__(new, "words", items[0] if len(items) == 1 else "")
            object.__setattr__(new, "new_words", items[0] if len(items) == 1 else "")
        if "budget" in taken:
            for key in ("budget_min", "budget_max"):
                parsed.pop(key, None)
                if (value := getattr(reading, key)) is not None:
                    parsed[key] = value
        for key in ("refinement", "product_refs", "order_id"):
            if key in taken:
                parsed.pop(key, None)
                if (value := getattr(reading, key)) not in (None, "none", []):
                    parsed[key] = value
        object.__setattr__(new, "parsed", parsed)
        for key in ("card_question", "need", "history"):
            if key in taken:
                object.__setattr__(new, key, getattr(reading, key))
        return new

    @property
    def prior(self) -> tuple[str, float] | None:
        """The classifier's best intent and its probability."""
        return self.intents[0] if self.intents else None


_NUMBER = re.compile(r"\d+(?:[.,]\d{1,2})?")
# numbers shoppers spell out ("no more than ten bucks"); the tuner writes prices with the same words
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
                 "fifty": 50}  # fmt: skip


def _said_numbers(text: str) -> set[float]:
    low = text.lower()
    found = {float(n.replace(",", ".")) for n in _NUMBER.findall(low)}
    return found | {float(v) for w, v in NUMBER_WORDS.items() if re.search(rf"\b{w}\b", low)}


def _said(item: str, text: str, vocabulary: frozenset[str]) -> bool:
    """Each word of the item is in the message, or is a catalogue word close to one there (a corrected typo)."""
    said = re.findall(r"[a-z0-9%]+", text.lower())
    for word in item.lower().split():
        if any(w == word or w.rstrip("s") == word.rstrip("s") for w in said):
            continue
        if word in vocabulary and any(len(w) > 3 and fuzz.ratio(w, word) >= 80 for w in said):
            continue
        return False
    return True


def accepted(ev: Evidence, r: TurnReading, field: str) -> bool:
    """The rules' check of one field of the tuned model's reading: what it says must be in the message (items,
    budgets, an order id), on the cards shown (references, card questions), follow a search (a refinement), or be
    a known need."""
    if field == "items":
        return all(_said(i, ev.message, ev.vocabulary) for i in r.items)
    if field == "budget":
        said = _said_numbers(ev.message)
        return all(v is None or v in said for v in (r.budget_min, r.budget_max))
    if field == "order_id":
        return r.order_id is None or r.order_id in ev.message
    if field == "product_refs":
        return all(n == -1 or 1 <= n <= len(ev.cards) for n in r.product_refs)
    if field == "card_question":
        return r.card_question == "none" or bool(ev.cards)
    if field == "refinement":
        return r.refinement == "none" or ev.previous is not None
    if field == "need":
        return r.need is None or r.need in acts.needs()
    return field in ("intent", "history")
