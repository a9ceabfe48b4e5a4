"""Understanding a shopper turn: a validated ``Understanding`` (intent, stage, slots, purchase-intent score).

Three sources, combined in a fixed order (documented in README):
1. the served LLM reads the turn (with the previous turn's slots) through a JSON-schema structured request.
   A small model (the default 135M) is asked for the intent only: measured, it copies prompt examples or
   invents product words, brands and prices, and every output token costs ~50 ms on 2 CPU cores. A capable
   model (``KEFU_LLM_READS_SLOTS=true``) also fills product words, brand and budget; its product words and
   brand count only when the shopper said them. Product words otherwise come from the message itself, less
   prices and filler. The purchase stage and purchase-intent score are derived from the intent, the slots
   and buying words ("I'll take", "add to cart");
2. deterministic parsers, which are exact where the LLM is weak: prices ("under $3", "between 2 and 5"),
   references to earlier results ("the second one"), refinements ("cheaper", "another brand"), order ids;
   where they find something, they win;
3. catalogue words: when the LLM calls a turn chitchat or out of scope but it names a product category or type
   of the shop's catalogue ("cheese", "crackers") or states a budget, it is a product search;
4. the fast intent classifier (fine-tuned MiniLM, ``assistant/intents.py``; it knows the after-sales intents,
   chitchat and out-of-scope, not the shopping ones) gives a prior: when the LLM is down its intent is used;
   when it is sure (≥ 0.9) of an intent the LLM did not choose, it wins. Comparison and recommendation words
   ("compare", "versus", "recommend", "suggest") then set those intents, and catalogue words (3.) come last.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Literal

from pydantic import BaseModel, Field

from assistant.llm import LLM, Usage

Intent = Literal[
    "product_search", "recommendation", "comparison", "product_question", "order_status", "return_refund",
    "delivery", "payment", "account", "complaint", "human_handoff", "chitchat", "out_of_scope",
]  # fmt: skip
Stage = Literal["browsing", "comparing", "ready_to_buy", "post_purchase"]
SHOPPING = {"product_search", "recommendation", "comparison", "product_question"}
AFTER_SALES = {"order_status", "return_refund", "delivery", "payment", "account", "human_handoff", "complaint"}


class Slots(BaseModel):
    query: str | None = Field(None, max_length=200, description="Product words to search for, e.g. 'gluten free pasta'")
    department: str | None = Field(None, max_length=60)
    category: str | None = Field(None, max_length=60)
    brand: str | None = Field(None, max_length=60)
    exclude_brand: str | None = Field(None, max_length=60)
    budget_min: float | None = Field(None, ge=0)
    budget_max: float | None = Field(None, ge=0)
    attributes: list[str] = Field(default_factory=list, max_length=8)
    quantity: int | None = Field(None, ge=1, le=1000)
    order_id: str | None = Field(None, max_length=40)
    product_refs: list[int] = Field(default_factory=list, max_length=5, description="1-based positions shown before")
    refinement: Literal["none", "cheaper", "pricier", "other_brand", "more"] = "none"


class Understanding(BaseModel):
    intent: Intent
    stage: Stage = "browsing"
    slots: Slots = Field(default_factory=Slots)
    purchase_intent: float = Field(0.0, ge=0, le=1, description="How likely this shopper buys soon, 0..1")
    confirm: bool = Field(False, description="The shopper says yes/confirms a pending action")


class IntentReading(BaseModel):
    """What a small model is asked for: the intent only (SmolLM2-135M copies or invents slot values)."""

    intent: Intent


class LLMReading(IntentReading):
    """What a capable model is asked for (``KEFU_LLM_READS_SLOTS=true``): the intent and the main slots."""

    product: str = Field("", max_length=120, description="product words only, '' if none")
    brand: str = Field("", max_length=40, description="'' if none")
    max_price: float | None = None


def prompt(slots: bool) -> str:
    name = "prompts/understand_slots.md" if slots else "prompts/understand.md"
    return resources.files("assistant").joinpath(name).read_text()


def understand_with_llm(llm: LLM, text: str, previous: Slots | None = None, slots: bool = False,
                        usage: Usage | None = None) -> LLMReading:
    context = f"Previous request: {previous.model_dump_json(exclude_defaults=True)}\n" if previous else ""
    messages = [
        {"role": "system", "content": prompt(slots)},
        {"role": "user", "content": f"{context}Shopper: {text}"},
    ]
    reading = llm.structured(messages, LLMReading if slots else IntentReading, max_tokens=120, temperature=0,
                             usage=usage)
    return LLMReading(**reading.model_dump())


FILLER = frozenset(
    """i im i'm i'd want wanted need would like looking look for some any a an the please show me find get
    buy do you have sell got can could something anything cheap cheaper cheapest good best nice new
    another different other brand more options option one ones it them this that these those what which
    is are there of to in on with and or my our under below over above less than most least between
    dollars dollar usd price priced around about recommend suggest suggestions ideas hi hello hey thanks
    am now first second third fourth fifth last just also too very really""".split()
)


def product_words(text: str) -> str:
    """The product words of a message: without prices, filler and numbers ("cheap pasta under $3" -> "pasta")."""
    for pattern in (_BETWEEN, _UNDER, _OVER):
        text = pattern.sub(" ", text)
    words = re.findall(r"[a-z][a-z0-9%'&-]*", text.lower())
    return " ".join(w for w in words if w not in FILLER)[:200]


# -- deterministic parsers ------------------------------------------------------------------------------
_MONEY = r"\$?\s*(\d+(?:\.\d{1,2})?)\s*(?:dollars|usd|\$)?"
_UNDER = re.compile(rf"\b(?:under|below|less than|cheaper than|at most|max(?:imum)?|up to|<)\s*{_MONEY}", re.I)
_OVER = re.compile(rf"\b(?:over|above|more than|at least|min(?:imum)?|>)\s*{_MONEY}", re.I)
_BETWEEN = re.compile(rf"\bbetween\s*{_MONEY}\s*(?:and|-|to)\s*{_MONEY}", re.I)
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
_CHEAPER = re.compile(r"\b(cheaper|less expensive|lower price|budget option|too expensive)\b", re.I)
_PRICIER = re.compile(r"\b(better quality|premium|more expensive|pricier)\b", re.I)
_OTHER_BRAND = re.compile(r"\b(different|another|other)\s+brand\b", re.I)
_MORE = re.compile(r"\b(show (?:me )?more|more options|anything else|other options)\b", re.I)
_COMPARE = re.compile(r"\b(compare|comparison|versus|vs\.?|difference between|which (?:one )?is better)\b", re.I)
_RECOMMEND = re.compile(r"\b(recommend|suggest|what should i (?:buy|get|try))\b", re.I)
_STORE_BRAND = re.compile(r"\b(store brand|private label|own brand|own label)\b", re.I)
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
    elif _MORE.search(text):
        found["refinement"] = "more"
    if _STORE_BRAND.search(text):
        found["brand"] = "Private"
    if _YES.search(text):
        found["confirm"] = True
    return found


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


_WORD = re.compile(r"[a-z]{4,}")


GENERIC = frozenset(
    [
        "products",
        "product",
        "misc",
        "other",
        "under",
        "kids",
        "food",
        "foods",
        "items",
        "item",
        "with",
        "without",
        "only",
        "free",
        "size",
        "family",
        "pack",
        "plus",
        "all",
        "non",
        "mix",
        "mixes",
        "dept",
        "department",
        "regular",
        "total",
        "each",
        "assorted",
        "single",
        "multi",
        "value",
    ]
)
VOCABULARY_SQL = """
SELECT word FROM (
    SELECT unnest(regexp_extract_all(lower(concat_ws(' ', category, product_type)), '[a-z]{4,}')) AS word
    FROM products WHERE price IS NOT NULL
) GROUP BY word HAVING count(*) >= ?
"""


def catalogue_vocabulary(con, min_products: int = 20) -> frozenset[str]:
    """Words naming categories and product types of at least ``min_products`` priced products (generic words out)."""
    return frozenset(r[0] for r in con.execute(VOCABULARY_SQL, [min_products]).fetchall()) - GENERIC


def catalogue_terms(text: str, vocabulary: frozenset[str]) -> list[str]:
    """Words of ``text`` that name a product category or type in the shop's catalogue (plural or singular)."""
    return [w for w in _WORD.findall(text.lower()) if {w, w + "s", w.removesuffix("s")} & vocabulary]


def combine(
    text: str,
    reading: LLMReading | None,
    prior: tuple[str, float] | None,
    previous: Slots | None,
    vocabulary: frozenset[str] = frozenset(),
) -> tuple[Understanding, str]:
    """Merge LLM reading, rules and classifier prior into one validated Understanding; return its source."""
    rules = parse_rules(text)
    sources = []
    if reading is not None:
        intent = reading.intent
        sources.append("llm")
    elif prior is not None:
        intent = prior[0]
        sources.append("classifier")
    else:
        intent = "product_search"
        sources.append("default")
    if prior is not None and reading is not None and prior[1] >= 0.9 and prior[0] != intent:
        intent = prior[0]  # the classifier is sure of an after-sales, chitchat or off-topic intent
        sources.append("classifier")
    sure_prior = prior is not None and prior[1] >= 0.9 and prior[0] == intent
    if not sure_prior and not rules.get("order_id"):
        # explicit words beat a small model's guess (it called "compare the first two" a complaint)
        if _COMPARE.search(text):
            intent = "comparison"
        elif _RECOMMEND.search(text):
            intent = "recommendation"
        elif rules.get("refinement") and (previous is not None or intent in SHOPPING):
            intent = "product_search"  # "something cheaper" refines the last search
    if rules.get("order_id") and intent in SHOPPING:
        intent = "order_status"
    if intent in ("chitchat", "out_of_scope") and (catalogue_terms(text, vocabulary) or "budget_max" in rules):
        intent = "product_search"  # a small model may call "cheese under $5" chitchat; a catalogue word decides
        sources.append("catalogue")
    if rules:
        sources.append("rules")

    said = text.lower()
    llm_words = reading.product.strip() if reading is not None else ""
    if not all(w in said for w in llm_words.lower().split()):
        llm_words = ""  # only product words the shopper actually said
    words = llm_words or product_words(text)
    slots = Slots()
    refining = bool(rules.get("refinement") or rules.get("product_refs")) or (
        previous is not None and intent in SHOPPING and not words
    )
    if previous is not None and refining:
        slots = previous.model_copy(update={"product_refs": [], "refinement": "none"})
    if words and intent in SHOPPING and not refining:
        slots.query = words
    if reading is not None:
        if reading.brand.strip() and reading.brand.strip().lower() in said:
            slots.brand = reading.brand.strip()  # only a brand the shopper actually said
        if (
            reading.max_price is not None
            and reading.max_price > 0
            and "budget_max" not in rules
            and re.search(r"\d", text)
        ):
            slots.budget_max = reading.max_price
    for key in ("budget_min", "budget_max", "product_refs", "order_id", "refinement", "brand"):
        if key in rules:
            setattr(slots, key, rules[key])
    if slots.refinement == "other_brand" and previous is not None and previous.brand:
        slots.exclude_brand, slots.brand = previous.brand, None
    if slots.query is None and intent in ("product_search", "product_question") and not refining:
        slots.query = text.strip()[:200]
    stage, purchase = stage_and_score(text, intent, slots)
    understanding = Understanding(
        intent=intent, stage=stage, slots=slots, purchase_intent=purchase, confirm=bool(rules.get("confirm"))
    )
    return understanding, "+".join(dict.fromkeys(sources))
