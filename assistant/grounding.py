"""Grounding post-check of the model's own words: a sentence may only state prices and ids that tools returned
this session. Sentences that state anything else are removed and counted as repairs. Product listings are
rendered from tool results, never from model text, so titles and prices shown are always real."""

from __future__ import annotations

import re

from assistant.events import ProductCard

PRICE = re.compile(r"\$\s?(\d+(?:\.\d{1,2})?)")  # a stated price; group 1 is the amount
ID = re.compile(r"\b\d{5,}\b")  # a product, order or coupon id
# fence and template glyphs: ours (<<< >>> and the ‹‹‹ ››› fence() leaves inside data), chat-template tokens, {slots}
GLYPHS = re.compile(r"<<<|>>>|‹‹|››|<\|[a-z_]+\|>|\{[a-z_]+\}|```|\[/?INST\]|</?s>|^\s*#{2,}", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")


def allowed_facts(cards: list[ProductCard], extra_ids: set[str] = frozenset()) -> tuple[set[str], set[str]]:
    prices = {f"{c.price:.2f}" for c in cards if c.price is not None}
    ids = {c.product_id for c in cards} | set(extra_ids)
    return prices, ids


def check_sentence(sentence: str, prices: set[str], ids: set[str]) -> str | None:
    """None when the sentence is grounded, else what is wrong with it."""
    words = sentence.lower().split()
    if len(words) >= 8 and len(set(words)) < 0.5 * len(words):
        return "repetitive"  # small models sometimes loop on a phrase
    if len(words) > 45:
        return "too long"
    if GLYPHS.search(sentence) or "not instructions" in sentence.lower():
        return "echoes the prompt"
    for m in PRICE.finditer(sentence):
        if f"{float(m.group(1)):.2f}" not in prices:
            return f"price ${m.group(1)} not from a tool"
    for m in ID.finditer(sentence):
        if m.group(0) not in ids:
            return f"id {m.group(0)} not from a tool"
    return None


class SentenceGate:
    """Feed streamed text; get back grounded sentences as they complete (and repairs for the rest)."""

    def __init__(self, prices: set[str], ids: set[str], max_sentences: int = 2) -> None:
        self.prices, self.ids = prices, ids
        self.buffer = ""
        self.repairs: list[str] = []
        self.emitted: list[str] = []
        self.max_sentences = max_sentences

    def feed(self, chunk: str) -> str:
        self.buffer += chunk
        parts = _SENTENCE_END.split(self.buffer)
        self.buffer = parts.pop()
        return "".join(self._pass(p) for p in parts if p.strip())

    def flush(self) -> str:
        rest, self.buffer = self.buffer, ""
        return self._pass(rest) if rest.strip() else ""

    def _pass(self, sentence: str) -> str:
        problem = check_sentence(sentence, self.prices, self.ids)
        if problem is None and len(self.emitted) >= self.max_sentences:
            problem = "beyond the sentence budget"
        if problem is None and sentence.strip().lower() in self.emitted:
            problem = "repeated"
        if problem:
            self.repairs.append(f"removed sentence ({problem}): {sentence.strip()[:120]}")
            return ""
        self.emitted.append(sentence.strip().lower())
        return sentence.strip() + " "
