"""The served model's reading of a turn, through a JSON-schema structured request.

The tuned model (``kefu llm tune``: ``TurnReading``, ``read_turn``) reads every field of the turn. The packaged
base model (the default 135M, untuned) is asked for the intent only: measured, it copies prompt examples or invents
product words, brands and prices, and every output token costs ~50 ms on 2 CPU cores. A capable model
(``KEFU_LLM_READS_SLOTS=true``) also fills product words, brand and budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from pydantic import BaseModel, Field

from assistant.understanding.schema import CardQuestion, History, Intent, Refinement, Slots
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


def prompt_named(name: str) -> str:
    return resources.files("assistant").joinpath("prompts", name).read_text()


def prompt(slots: bool) -> str:
    return prompt_named("understand_slots.md" if slots else "understand.md")


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


# -- the tuned reader (``kefu llm tune``): the whole reading of a turn, fields as the eval scores them ------------
class TurnReading(BaseModel):
    """What the tuned model reads from a turn: every scored field of the reading. Defaults are left out of its
    answers (shorter, so faster: each token costs ~35 ms on 2 cores); the keys come in this order."""

    intent: Intent
    items: list[str] = Field(default_factory=list, max_length=8, description="the products this turn names")
    budget_min: float | None = Field(None, ge=0)
    budget_max: float | None = Field(None, ge=0)
    refinement: Refinement = "none"
    card_question: CardQuestion = "none"
    product_refs: list[int] = Field(default_factory=list, max_length=5, description="1-based; -1 = the last")
    need: str | None = Field(None, max_length=40, description="a key of needs.toml")
    history: History = "none"
    order_id: str | None = Field(None, max_length=40)

    def answer(self) -> str:
        """The reading as the tuned model writes it: compact JSON, defaults left out."""
        return self.model_dump_json(exclude_defaults=True)


@dataclass(frozen=True)
class TurnContext:
    """What the turn follows: the last search's words and how many cards were shown."""

    last_query: str | None = None
    cards: int = 0


def turn_messages(text: str, context: TurnContext) -> list[dict[str, str]]:
    """The chat the tuned model reads (the same in training and at run time)."""
    lines = [f"Shown: {context.cards} products"] if context.cards else []
    lines += [f"Last search: {context.last_query}"] if context.last_query else []
    return [
        {"role": "system", "content": prompt_named("read_turn.md")},
        {"role": "user", "content": "\n".join([*lines, f"Shopper: {text[:300]}"])},
    ]


def read_turn(llm: LLM, text: str, context: TurnContext, usage: Usage | None = None) -> TurnReading:
    """The tuned model's reading of one turn, constrained to ``TurnReading``'s JSON schema."""
    return llm.structured(turn_messages(text, context), TurnReading, max_tokens=96, temperature=0, usage=usage)
