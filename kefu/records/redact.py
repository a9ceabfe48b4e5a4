"""PII redaction for everything written to the records database (the conversation log and cases): emails,
payment card numbers, phone numbers and street addresses become ``[EMAIL]``, ``[CARD]``, ``[PHONE]``,
``[ADDRESS]``. Ids stay readable, so an eval on the log can follow an order, a product or a case: a card is a
13-19 digit run, or short digit groups as cards are written (4 4 4 4, 4 6 5), that passes the Luhn check (found
also right beside an order id), and a phone number is written as one (a ``+`` country code, separators or
brackets, or digits right after "call", "phone", "tel", "mobile", "cell", "text", "whatsapp"), never a bare digit
run such as an 11-digit order id.

Patterns, not a library: presidio needs spaCy models (a download) and scrubadub treats long digit runs as
phone numbers, which is the bug this module fixes; these rules are tested on both sides (tests/test_records.py).
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
DIGIT_RUN = re.compile(r"(?<![\w-])\d+(?:[ -]\d+)*(?![\w-])")  # digit groups joined by single spaces or dashes
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


def _is_card(groups: list[str]) -> bool:
    """One unbroken 13-19 digit group, or consecutive short groups (4 4 4 4, 4 6 5 …) of 13-19 digits in all;
    Luhn-checked. An 11-digit order id is never part of a written-out card."""
    digits = "".join(groups)
    if not 13 <= len(digits) <= 19 or (len(groups) > 1 and any(not 3 <= len(g) <= 6 for g in groups)):
        return False
    return luhn_ok(digits)


def _cards(match: re.Match) -> str:
    """A run of digit groups with every card in it replaced; the other groups (ids beside a card) are kept."""
    parts = re.split(r"([ -])", match.group(0))  # group, separator, group, …
    groups, out, i = parts[::2], [], 0
    while i < len(groups):
        end = next((j for j in range(min(len(groups), i + 5), i, -1) if _is_card(groups[i:j])), None)
        if end is None:
            out.append(groups[i] + (parts[2 * i + 1] if 2 * i + 1 < len(parts) else ""))
            i += 1
        else:
            out.append("[CARD]" + (parts[2 * end - 1] if 2 * end - 1 < len(parts) else ""))
            i = end
    return "".join(out)


def redact(text: str) -> str:
    """Replace emails, card numbers, phone numbers and street addresses with [EMAIL] etc.; keep ids."""
    text = EMAIL.sub("[EMAIL]", text)
    text = DIGIT_RUN.sub(_cards, text)
    text = PHONE.sub("[PHONE]", text)
    text = PHONE_WORDS.sub(lambda m: m.group(1) + "[PHONE]", text)
    return ADDRESS.sub("[ADDRESS]", text)
