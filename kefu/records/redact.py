"""PII redaction for everything written to the records database (the conversation log and cases): emails,
payment card numbers, phone numbers and street addresses become ``[EMAIL]``, ``[CARD]``, ``[PHONE]``,
``[ADDRESS]``. Ids stay readable, so an eval on the log can follow an order, a product or a case: a card is a
13-19 digit run that passes the Luhn check, and a phone number is written as one (a ``+`` country code,
separators or brackets, or digits right after "call", "phone", "tel", "mobile", "cell", "text", "whatsapp"),
never a bare digit run such as an 11-digit order id.

Patterns, not a library: presidio needs spaCy models (a download) and scrubadub treats long digit runs as
phone numbers, which is the bug this module fixes; these rules are tested on both sides (tests/test_records.py).
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
CARD_LIKE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
PHONE = re.compile(
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}\b"  # +1 415 555 0100, +44 (20) 7946 0958
    r"|(?<![\w-])\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}\b"  # (415) 555-0100
    r"|(?<![\w-])\d{3}[.-]\d{3}[.-]\d{4}\b"  # 415-555-0100, 415.555.0100
    r"|(?<![\w-])\d{3} \d{3} \d{4}\b"  # 415 555 0100
)
PHONE_WORDS = re.compile(r"(\b(?:call|phone|tel|mobile|cell|text|whatsapp)\b\D{0,15})(\d{7,15})\b", re.I)
ADDRESS = re.compile(
    r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|"
    r"Court|Ct|Place|Pl|Terrace)\b\.?",
    re.I,
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


def redact(text: str) -> str:
    """Replace emails, card numbers, phone numbers and street addresses with [EMAIL] etc.; keep ids."""
    text = EMAIL.sub("[EMAIL]", text)
    text = CARD_LIKE.sub(_card, text)
    text = PHONE.sub("[PHONE]", text)
    text = PHONE_WORDS.sub(lambda m: m.group(1) + "[PHONE]", text)
    return ADDRESS.sub("[ADDRESS]", text)
