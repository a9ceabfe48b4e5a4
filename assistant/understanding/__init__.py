"""Understanding a shopper turn: a validated ``Understanding`` (intent, stage, slots, purchase-intent score, and
the trace of the rules that decided it).

One spine (``spine.py``): the turn's ``Evidence`` (``evidence.py``: the served model's reading through a
JSON-schema request, the fast classifier's top intents, the deterministic parsers of ``rules.py`` and ``acts.py``,
catalogue words, the previous turn's reading and cards) goes through one ordered table of named rules. A small
model (the default 135M) is asked for the intent only: measured, it copies prompt examples or invents product
words, brands and prices. A capable model (``KEFU_LLM_READS_SLOTS=true``) also fills product words, brand and
budget; they count only when the shopper said them.
"""

from assistant.understanding.catalogue import catalogue_terms, catalogue_vocabulary
from assistant.understanding.evidence import Evidence
from assistant.understanding.reading import IntentReading, LLMReading, understand_with_llm
from assistant.understanding.rules import parse_rules, stage_and_score
from assistant.understanding.schema import AFTER_SALES, INTENTS, SHOPPING, Intent, Slots, Stage, Understanding
from assistant.understanding.spine import RULES, Rule, understand

__all__ = [
    "AFTER_SALES", "INTENTS", "RULES", "SHOPPING", "Evidence", "Intent", "IntentReading", "LLMReading", "Rule",
    "Slots", "Stage", "Understanding", "catalogue_terms", "catalogue_vocabulary", "parse_rules",
    "stage_and_score", "understand", "understand_with_llm",
]  # fmt: skip
