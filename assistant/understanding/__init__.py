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
4. the fast intent classifier (fine-tuned MiniLM, ``understanding/intents.py``; it knows the after-sales intents,
   chitchat and out-of-scope, not the shopping ones) gives a prior: when the LLM is down its intent is used;
   when it is sure (≥ 0.9) of an intent the LLM did not choose, it wins. Comparison and recommendation words
   ("compare", "versus", "recommend", "suggest") then set those intents, and catalogue words (3.) come last.
"""

from assistant.understanding.catalogue import catalogue_terms, catalogue_vocabulary
from assistant.understanding.combine import combine
from assistant.understanding.reading import IntentReading, LLMReading, understand_with_llm
from assistant.understanding.rules import parse_rules, product_words, stage_and_score
from assistant.understanding.schema import AFTER_SALES, INTENTS, SHOPPING, Intent, Slots, Stage, Understanding

__all__ = [
    "AFTER_SALES", "INTENTS", "SHOPPING", "Intent", "IntentReading", "LLMReading", "Slots", "Stage", "Understanding",
    "catalogue_terms", "catalogue_vocabulary", "combine", "parse_rules", "product_words", "stage_and_score",
    "understand_with_llm",
]  # fmt: skip
