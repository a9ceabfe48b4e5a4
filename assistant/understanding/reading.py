"""The served model's reading of a turn, through a JSON-schema structured request.

A small model (the default 135M) is asked for the intent only: measured, it copies prompt examples or invents
product words, brands and prices, and every output token costs ~50 ms on 2 CPU cores. A capable model
(``KEFU_LLM_READS_SLOTS=true``) also fills product words, brand and budget.
"""

from __future__ import annotations

from importlib import resources

from pydantic import BaseModel, Field

from assistant.understanding.schema import Intent, Slots
from kefu.llm.client import LLM, Usage


class IntentReading(BaseModel):
    """What a small model is asked for: the intent only (SmolLM2-135M copies or invents slot values)."""

    intent: Intent


class LLMReading(IntentReading):
    """What a capable model is asked for (``KEFU_LLM_READS_SLOTS=true``): the intent and the main slots, named as
    in ``Slots``; the rule table keeps only what the shopper actually said (``spine.py``, rule "model-slots")."""

    product: str = Field("", max_length=120, description="product words only, '' if none")
    items: list[str] = Field(default_factory=list, max_length=8, description="each product of a shopping list")
    brand: str = Field("", max_length=40, description="'' if none")
    max_price: float | None = None
    need: str = Field("", max_length=60, description="an occasion or problem, e.g. 'party', '' if none")


def prompt(slots: bool) -> str:
    name = "prompts/understand_slots.md" if slots else "prompts/understand.md"
    return resources.files("assistant").joinpath(name).read_text()


def understand_with_llm(
    llm: LLM, text: str, previous: Slots | None = None, slots: bool = False, usage: Usage | None = None
) -> LLMReading:
    context = f"Previous request: {previous.model_dump_json(exclude_defaults=True)}\n" if previous else ""
    messages = [
        {"role": "system", "content": prompt(slots)},
        {"role": "user", "content": f"{context}Shopper: {text}"},
    ]
    reading = llm.structured(
        messages, LLMReading if slots else IntentReading, max_tokens=120, temperature=0, usage=usage
    )
    return LLMReading(**reading.model_dump())
