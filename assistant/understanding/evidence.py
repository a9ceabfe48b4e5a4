"""``Evidence``: everything the understanding step knows about one turn, gathered once, before any rule runs:
the model's reading, the classifier's top intents, what the parsers found, catalogue words, the previous turn's
reading and cards, and the session's context. The rule table (``spine.py``) reads only this."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.understanding import acts, phrases
from assistant.understanding.catalogue import Lexicon, catalogue_terms
from assistant.understanding.reading import LLMReading
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

    @property
    def prior(self) -> tuple[str, float] | None:
        """The classifier's best intent and its probability."""
        return self.intents[0] if self.intents else None
