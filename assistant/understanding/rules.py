"""Deterministic parsers, exact where a small model is weak: prices ("under $3", "between 2 and 5"),
references to earlier results ("the second one"), refinements ("cheaper", "another brand"), order ids, yes/no,
product words, and the purchase stage and score."""

from __future__ import annotations

import re

from assistant.understanding import acts
from assistant.understanding.schema import AFTER_SALES, Slots, Stage

FILLER = frozenset(acts.words()["filler"])  # words.toml


_SWITCH = re.compile(r"\b(?:never ?mind|forget (?:it|that|about)|scratch that|wait,? no|no wait|actually)\b", re.I)


def after_switch(text: str) -> str:
    """What follows a topic switch ("never mind the dog, do you have tea bags" -> "do you have tea bags")."""
    if (m := _SWITCH.search(text)) is None:
        return text
    rest = text[m.end() :]
    cut = re.search(r"[,.;!?]\s*(?=\S)", rest)
    return rest[cut.end() :] if cut else rest


# -- deterministic parsers ------------------------------------------------------------------------------
_MONEY = r"\$?\s*(\d+(?:\.\d{1,2})?)\s*(?:dollars|usd|\$)?"
_UNDER = re.compile(rf"\b(?:under|below|less than|cheaper than|at most|max(?:imum)?|up to|<)\s*{_MONEY}", re.I)
_OVER = re.compile(rf"\b(?:over|above|more than|at least|min(?:imum)?|>)\s*{_MONEY}", re.I)
_BETWEEN = re.compile(rf"\bbetween\s*{_MONEY}\s*(?:and|-|to)\s*{_MONEY}", re.I)
# a budget said after the amount: "100 dollars max", "$20 or less", "in the $300 range", "$5 tops"
_UNDER_AFTER = re.compile(
    r"(?:\$\s*(\d+(?:\.\d{1,2})?)|(\d+(?:\.\d{1,2})?)\s*(?:dollars|usd|bucks|\$))\s*"
    r"(?:max(?:imum)?\b|or less\b|or under\b|tops\b|at most\b|at the most\b|range\b|budget\b|limit\b)",
    re.I,
)
# budgets in other languages, read even when the rest of the message cannot be: "五美元以内", "menos de 5 dólares"
_UNDER_OTHER = re.compile(
    r"\b(?:menos de|por debajo de|moins de|unter|weniger als|meno di|sotto i?)\s*\$?\s*(\d+(?:[.,]\d{1,2})?)", re.I
)
_CJK_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CJK_UNDER = re.compile(
    r"([0-9]+(?:\.[0-9]+)?|[零一二两三四五六七八九十百]+)\s*(?:美元|美金|块钱?|元|刀)\s*(?:以内|以下|之内|内)"
)


def cjk_number(text: str) -> float | None:
    """ "5", "五", "十五", "二十", "一百" -> the number (up to 999)."""
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text):
        return float(text)
    total, digit = 0, 0
    for ch in text:
        if ch in _CJK_DIGITS:
            digit = _CJK_DIGITS[ch]
        elif ch in "十百":
            total += (digit or 1) * (10 if ch == "十" else 100)
            digit = 0
        else:
            return None
    return float(total + digit) if total + digit else None


_ORDINALS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "fifth": 5,
    "5th": 5,
    "last": -1,
}
_REF = re.compile(
    r"\b(?:the\s+)?(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last)\b(?:\s+(?:one|item|product))?", re.I
)
_NUM_REF = re.compile(r"\b(?:number|no\.?|#|item|option)\s*(\d)\b", re.I)
_ORDER = re.compile(r"\border\s*(?:id|number|no\.?|#)?\s*:?\s*#?([A-Za-z0-9-]{4,40}\d)\b", re.I)
_CHEAPER = re.compile(
    r"\b(cheap(?:er|r|per|pr)|less expensive|lower price|budget option|too expensive|too pricey|too much)\b", re.I
)
_PRICIER = re.compile(r"\b(better quality|premium|more expensive|pricier|fancier|higher end|nicer one)\b", re.I)
_OTHER_BRAND = re.compile(
    r"\b(different|another|other|any other|else'?s?)\s+brands?\b|\bnot (?:this|that) brand\b", re.I
)
_BIGGER = re.compile(r"\b(bigger|larger|bulk|more of it|jumbo|economy size|big(?:ger)? (?:one|pack|size))\b", re.I)
_SMALLER = re.compile(r"\b(smaller|small(?:er)? (?:one|pack|size)|single serve|travel size|mini|less of it)\b", re.I)
_MORE = re.compile(
    r"\b(show (?:me )?more|more options|anything else|other options|what else|similar (?:to|ones?)|"
    r"more like (?:this|that|these|those|the|it)|like (?:this|that) one)\b",
    re.I,
)
# negation: "not the diet one", "no sugar free", "don't want the spicy kind": words to keep out of the results
_EXCLUDE = re.compile(
    r"\b(?:not|no|don'?t want|do not want|except|anything but|without the|but not)\s+(?:the\s+|any\s+|a\s+)?"
    r"((?:[a-z-]+\s+)?[a-z-]+?)(?:\s+(?:one|ones|kind|type|version|stuff))?(?=\s*(?:[,.;!?]|$|\b(?:the|but|please|i|one)\b))",
    re.I,
)
COMPARE_WORDS = re.compile(r"\b(compare|comparison|versus|vs\.?|difference between|which (?:one )?is better)\b", re.I)
RECOMMEND_WORDS = re.compile(r"\b(recommend|suggest|what should i (?:buy|get|try))\b", re.I)
_STORE_BRAND = re.compile(
    r"\b(store[- ]?brand|private label|own[- ]brand|own label|house brand|generic|store'?s own|shop'?s own|"
    r"your (?:own )?brand|the cheap brand)\b",
    re.I,
)
_NAME_BRAND = re.compile(r"\b(name[- ]brands?|brand[- ]names?|national brands?|big brands?|real brand)\b", re.I)
_A_DOLLAR = re.compile(r"\b(?:under|below|less than|at most|up to)\s+(?:a|one)\s+(?:dollar|buck)\b", re.I)
PRICE_PATTERNS = (_BETWEEN, _UNDER, _OVER, _UNDER_AFTER, _EXCLUDE, _A_DOLLAR)  # what product words leave out
_YES = re.compile(r"^\s*(yes|yep|yeah|sure|confirm(?:ed)?|ok(?:ay)?|go ahead|please do|do it)\b", re.I)


def parse_rules(text: str) -> dict:
    """What the deterministic parsers find in ``text`` (keys only where found)."""
    found: dict = {}
    if m := _BETWEEN.search(text):
        lo, hi = sorted((float(m.group(1)), float(m.group(2))))
        found["budget_min"], found["budget_max"] = lo, hi
    else:
        if m := _UNDER.search(text):
            found["budget_max"] = float(m.group(1))
        elif _A_DOLLAR.search(text):
            found["budget_max"] = 1.0
        elif m := _UNDER_AFTER.search(text):
            found["budget_max"] = float(m.group(1) or m.group(2))
        elif m := _UNDER_OTHER.search(text):
            found["budget_max"] = float(m.group(1).replace(",", "."))
        elif (m := _CJK_UNDER.search(text)) and (amount := cjk_number(m.group(1))) is not None:
            found["budget_max"] = amount
        if m := _OVER.search(text):
            found["budget_min"] = float(m.group(1))
    refs = [_ORDINALS[m.group(1).lower()] for m in _REF.finditer(text)]
    refs += [int(m.group(1)) for m in _NUM_REF.finditer(text)]
    if refs:
        found["product_refs"] = refs[:5]
    if m := _ORDER.search(text):
        found["order_id"] = m.group(1)
    if _CHEAPER.search(text):
        found["refinement"] = "cheaper"
    elif _OTHER_BRAND.search(text):
        found["refinement"] = "other_brand"
    elif _PRICIER.search(text):
        found["refinement"] = "pricier"
    elif _BIGGER.search(text):
        found["refinement"] = "bigger"
    elif _SMALLER.search(text):
        found["refinement"] = "smaller"
    elif _MORE.search(text):
        found["refinement"] = "more"
    if _STORE_BRAND.search(text):
        found["store_brand"] = True
    elif _NAME_BRAND.search(text):
        found["name_brand"] = True
    excluded = [
        re.sub(r"\s+(?:one|ones|kind|type|version|stuff)$", "", m.group(1).lower()) for m in _EXCLUDE.finditer(text)
    ]
    if excluded := [w for w in excluded if w not in FILLER and w not in NOT_EXCLUDED]:
        found["exclude"] = excluded[:5]
    if _YES.search(text):
        found["confirm"] = True
    return found


NOT_EXCLUDED = frozenset(
    "sure problem problems thanks thank worries bad quite exactly yet today right idea clue way".split()
)

_READY = re.compile(
    r"\b(buy|order (?:it|them|now|this)|add (?:it |them )?to (?:my )?(?:cart|basket)|checkout|"
    r"take (?:it|them|two|three)|i'?ll take)\b",
    re.I,
)
BASE_SCORE = {"product_search": 0.5, "recommendation": 0.4, "comparison": 0.6, "product_question": 0.55}


def stage_and_score(text: str, intent: str, slots: Slots) -> tuple[Stage, float]:
    """Purchase stage and a 0..1 purchase-intent score, from the intent, the slots and buying words."""
    ready = bool(_READY.search(text))
    if intent in AFTER_SALES:
        stage: Stage = "post_purchase"
    elif ready:
        stage = "ready_to_buy"
    elif intent == "comparison" or slots.product_refs:
        stage = "comparing"
    else:
        stage = "browsing"
    score = BASE_SCORE.get(intent, 0.1)
    score += 0.15 * (slots.budget_max is not None or slots.budget_min is not None) + 0.1 * bool(slots.product_refs)
    score += 0.35 * ready
    return stage, round(min(score, 1.0), 2)
