"""The gate every text passes before a shopper sees it. A model-written sentence is removed (and counted as a
repair) when it states a price or id that no tool returned this session, offers a discount, coupon, refund or
delivery promise no tool returned, repeats 8+ consecutive words of the shopper's message, shows fence or
template glyphs or a link, loops, runs long, or repeats an earlier sentence. Text rendered from tool results
(product listings, the shopper's orders) and template lead-ins pass the same gate line by line (``gate_lines``):
catalogue and order text is checked for links and glyphs, a failed tool's message (which the model's arguments
steered) for everything a model sentence is."""

from __future__ import annotations

import re

from assistant.events import ProductCard

PRICE = re.compile(r"\$\s?(\d+(?:\.\d{1,2})?)")  # a stated price; group 1 is the amount
ID = re.compile(r"\b\d{5,}\b")  # a product, order or coupon id
# fence and template glyphs: ours (<<< >>> and the ‹‹‹ ››› fence() leaves inside data), chat-template tokens, {slots}
GLYPHS = re.compile(r"<<<|>>>|‹‹|››|‹\||\|›|<\|[a-z_]+\|>|\{[a-z_]+\}|```|\[/?INST\]|</?s>|^\s*#{2,}", re.M)
# a link or an image, in Markdown or HTML, or a bare URL: no text a shopper reads carries one
LINK = re.compile(r"https?:|\bwww\.|\]\(|!\[|\bjavascript:|\bdata:\w+/|<\s*/?\s*(?:a|img|iframe|script)\b", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")
# an offer, discount or promise: stated only when a tool returned one (a coupon from the shopper's campaigns)
OFFER = re.compile(
    r"\b(discount\w*|coupons?|vouchers?|promo\w*|sale|deals?|\d+\s?% off|% off|free (shipping|delivery|gift)"
    r"|refund\w*|guarantee\w*|warrant\w*|cashback|rebate\w*|money.back|price match\w*|loyalty points?)\b",
    re.I,
)
ECHO_WORDS = 8
_WORD = re.compile(r"[\w'$.%-]+")


def words_of(text: str) -> list[str]:
    return [w.strip(".,!?;:'\"").lower() for w in _WORD.findall(text) if w.strip(".,!?;:'\"")]


def echoes(message: str, text: str, n: int = ECHO_WORDS) -> bool:
    """``text`` repeats ``n`` or more consecutive words of ``message``."""
    said = words_of(message)
    grams = {tuple(said[i : i + n]) for i in range(len(said) - n + 1)}
    written = words_of(text)
    return any(tuple(written[i : i + n]) in grams for i in range(len(written) - n + 1))


def allowed_facts(cards: list[ProductCard], extra_ids: set[str] = frozenset()) -> tuple[set[str], set[str]]:
    prices = {f"{p:.2f}" for c in cards for p in (c.price, c.price_low, c.price_high) if p is not None}
    ids = {c.product_id for c in cards} | set(extra_ids)
    return prices, ids


def check_sentence(
    sentence: str, prices: set[str], ids: set[str], message: str = "", offers: bool = False
) -> str | None:
    """None when the sentence may be shown, else what is wrong with it. ``offers``: a tool returned an offer."""
    words = sentence.lower().split()
    if len(words) >= 8 and len(set(words)) < 0.5 * len(words):
        return "repetitive"  # small models sometimes loop on a phrase
    if len(words) > 45:
        return "too long"
    if problem := markup_problem(sentence):
        return problem
    if message and echoes(message, sentence):
        return "echoes the shopper"
    if not offers and (m := OFFER.search(sentence)):
        return f"states an offer no tool returned ({m.group(0)})"
    for m in PRICE.finditer(sentence):
        if f"{float(m.group(1)):.2f}" not in prices:
            return f"price ${m.group(1)} not from a tool"
    for m in ID.finditer(sentence):
        if m.group(0) not in ids:
            return f"id {m.group(0)} not from a tool"
    return None


def markup_problem(text: str) -> str | None:
    """What no shopper-facing text may show, whoever wrote it: fence or template glyphs, a link or an image."""
    if GLYPHS.search(text) or "not instructions" in text.lower():
        return "echoes the prompt"
    if LINK.search(text):
        return "shows a link"
    return None


def gate_lines(text: str, repairs: list[str], check=markup_problem) -> str:
    """``text`` without the lines ``check`` objects to (each removal appended to ``repairs``)."""
    kept = []
    for line in text.split("\n"):
        if line.strip() and (problem := check(line)):
            repairs.append(f"removed line ({problem})")
        else:
            kept.append(line)
    return "\n".join(kept)


class SentenceGate:
    """Feed streamed text; get back grounded sentences as they complete (and repairs for the rest)."""

    def __init__(self, prices: set[str], ids: set[str], max_sentences: int = 2, message: str = "",
                 offers: bool = False) -> None:  # fmt: skip
        self.prices, self.ids, self.message, self.offers = prices, ids, message, offers
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
        problem = check_sentence(sentence, self.prices, self.ids, self.message, self.offers)
        if problem is None and len(self.emitted) >= self.max_sentences:
            problem = "beyond the sentence budget"
        if problem is None and sentence.strip().lower() in self.emitted:
            problem = "repeated"
        if problem:
            self.repairs.append(f"removed sentence ({problem})")  # not the text: repairs reach the shopper's stream
            return ""
        self.emitted.append(sentence.strip().lower())
        return sentence.strip() + " "
