"""PII redaction for everything written to the records database: emails, card numbers, phone numbers, street
addresses become ``[EMAIL]``, ``[CARD]``, ``[PHONE]``, ``[ADDRESS]``."""

from __future__ import annotations

import re

PII_PATTERNS = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    ("card", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    ("phone", re.compile(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]?\d{3,4}\b")),
    (
        "address",
        re.compile(
            r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|"
            r"Court|Ct|Place|Pl)\b\.?",
            re.I,
        ),
    ),
]


def redact(text: str) -> str:
    """Replace emails, card numbers, phone numbers and street addresses with [EMAIL] etc."""
    for name, pattern in PII_PATTERNS:
        text = pattern.sub(f"[{name.upper()}]", text)
    return text
