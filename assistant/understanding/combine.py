"""Merge the model's reading, the rules and the classifier prior into one validated ``Understanding``.

The order is fixed (README, "How a turn works"): the model's intent; a classifier that is sure (>= 0.9, or >= 0.6
for an after-sales intent) of another intent wins; the model's after-sales intent needs the classifier's
agreement; explicit compare/recommend/refine words beat a small model's guess; an order id makes a
shopping turn an order question; catalogue words or a budget make chitchat a product search. Slots: the rules
win where they found something; the model's product words and brand count only when the shopper said them.
"""

from __future__ import annotations

import re

from assistant.understanding.catalogue import catalogue_terms
from assistant.understanding.reading import LLMReading
from assistant.understanding.rules import COMPARE_WORDS, RECOMMEND_WORDS, parse_rules, product_words, stage_and_score
from assistant.understanding.schema import AFTER_SALES, SHOPPING, Slots, Understanding

AFTER_SALES_SURE = 0.6  # the classifier is trained on real after-sales requests (Bitext): from here it wins


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
    if prior is not None and reading is not None and prior[0] != intent:
        if prior[1] >= 0.9 or (prior[0] in AFTER_SALES and prior[1] >= AFTER_SALES_SURE):
            intent = prior[0]  # the classifier is sure of an after-sales, chitchat or off-topic intent
            sources.append("classifier")
        elif intent in AFTER_SALES:
            # a small model's after-sales guess the classifier does not share ("a 55 inch TV" -> account) is
            # not trusted: the classifier's own after-sales intent if it has one, else a product search
            intent = prior[0] if prior[0] in AFTER_SALES and prior[1] >= 0.5 else "product_search"
            sources.append("classifier")
    if intent == "comparison" and not COMPARE_WORDS.search(text):
        intent = "product_search"  # a comparison runs on the products shown: only when the shopper asks for one
    sure_prior = prior is not None and prior[1] >= 0.9 and prior[0] == intent
    if not sure_prior and not rules.get("order_id"):
        # explicit words beat a small model's guess (it called "compare the first two" a complaint)
        if COMPARE_WORDS.search(text):
            intent = "comparison"
        elif RECOMMEND_WORDS.search(text):
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
