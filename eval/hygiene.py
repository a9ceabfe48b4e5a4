"""Reply hygiene: what must never reach a shopper, checked on every turn of every eval command.

- ``echo``: 8 or more consecutive words of the shopper's message repeated in the reply;
- ``glyphs``: fence or template glyphs (``<<<``, ``›››``, ``{name}``, chat-template tokens, code fences);
- ``repeated_sentence``: a sentence or line (3+ words) said twice;
- ``ungrounded``: a price ($x.yy) or an id (5+ digits) that no tool returned;
- ``over_budget``: a card priced above the budget the shopper stated;
- ``unpriced_card``: a card without a price.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from assistant.grounding import ECHO_WORDS, GLYPHS, ID, PRICE, echoes, words_of  # what the reply gate checks

CHECKS = ("echo", "glyphs", "repeated_sentence", "ungrounded", "over_budget", "unpriced_card")

# a sentence ends at . ! ? before a capital, digit or quote (so "Misc. hair & beauty access." stays one), or a line
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
_words = words_of


def echo(message: str, reply: str, n: int = ECHO_WORDS) -> bool:
    return echoes(message, reply, n)


def glyphs(reply: str) -> bool:
    return bool(GLYPHS.search(reply))


def repeated_sentence(reply: str) -> bool:
    seen = Counter(" ".join(_words(s)) for s in _SENTENCES.split(reply) if len(_words(s)) >= 3)
    return any(count > 1 for count in seen.values())


def ungrounded(reply: str, known_prices: set[str], known_ids: set[str]) -> bool:
    prices = {f"{float(m.group(1)):.2f}" for m in PRICE.finditer(reply)}
    return bool(prices - known_prices) or bool(set(ID.findall(reply)) - known_ids)


def over_budget(card_prices: list[float | None], budget_max: float | None) -> bool:
    return budget_max is not None and any(p is not None and p > budget_max + 1e-9 for p in card_prices)


def unpriced_card(card_prices: list[float | None]) -> bool:
    return any(p is None for p in card_prices)


def facts_of(texts: list[str]) -> tuple[set[str], set[str]]:
    """The prices and ids stated in tool outputs: what a reply may repeat."""
    joined = "\n".join(texts)
    return {f"{float(m.group(1)):.2f}" for m in PRICE.finditer(joined)}, set(ID.findall(joined))


def check(
    message: str,
    reply: str,
    card_prices: list[float | None],
    budget_max: float | None,
    known_prices: set[str],
    known_ids: set[str],
) -> dict[str, bool]:
    return {
        "echo": echo(message, reply),
        "glyphs": glyphs(reply),
        "repeated_sentence": repeated_sentence(reply),
        "ungrounded": ungrounded(reply, known_prices, known_ids),
        "over_budget": over_budget(card_prices, budget_max),
        "unpriced_card": unpriced_card(card_prices),
    }


@dataclass
class Tally:
    """Hygiene over many turns: rates and a few examples of each problem."""

    turns: int = 0
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[dict]] = field(default_factory=dict)
    keep: int = 3

    def add(self, flags: dict[str, bool], message: str, reply: str) -> None:
        self.turns += 1
        for name in CHECKS:
            if flags.get(name):
                self.counts[name] += 1
                shown = self.examples.setdefault(name, [])
                if len(shown) < self.keep:
                    shown.append({"message": message[:300], "reply": reply[:500]})

    def as_json(self) -> dict:
        rates = {name: round(self.counts[name] / self.turns, 4) if self.turns else 0.0 for name in CHECKS}
        return {"turns": self.turns, "rates": rates, "counts": dict(self.counts), "examples": self.examples}
