"""The conversation's goal at this turn: what the shopper is doing, kept across turns as dialogue state.

The intent says what to do with one turn; the goal says what the conversation is about (the three goals of
conversational commerce, plus talk around them):

- ``search``: finding products that fit what the shopper already knows they want ("do you have oat milk?");
- ``recommendation``: being advised, from needs and preferences the shopper discloses ("a gift for my sister,
  she's into yoga"), until they are helped;
- ``qa``: a question about a product shown or named ("is it waterproof?");
- ``meta``: greetings, thanks, goodbyes, talk about the assistant; ``service``: orders, returns, the account.

A goal goes on until a turn starts another: an answer to the assistant's question, a preference or a constraint
("around $20", "paperback please", "yes") carries the goal of the turns before it. A question that asks for
products is a search, one that asks about a product is qa. The goal is shown in the copilot's timeline and
scored by ``kefu eval dialogues`` against recorded conversations' goal annotations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import get_args

from assistant.understanding import acts
from assistant.understanding.schema import AFTER_SALES, Goal, Slots

GOALS: tuple[str, ...] = get_args(Goal)
SHOPPING_GOALS = ("search", "recommendation")

# the shopper says who or what it is for, what they like, or that they want advice: a recommendation
DISCLOSES = re.compile(
    r"\b(?:i|we|he|she|they)(?:'m| am|'re| are|'s| is)? (?:really )?(?:like|likes|love|loves|prefer|prefers|enjoy|"
    r"enjoys|into|a fan of|fans of|new to|starting|just started|beginner|looking to)\b|"
    r"\bfor (?:my|our|his|her|their|a|an) (?:\w+ )?(?:son|daughter|wife|husband|mom|mum|dad|mother|father|kids?|"
    r"children|friend|sister|brother|boss|colleague|partner|girlfriend|boyfriend|family|teenager|baby|grandma|"
    r"grandpa|birthday|gift|present|trip|party|wedding|office|school|work|hiking|running|camping|beginner)\b|"
    r"\b(?:gift|present|no idea what|not sure (?:what|which)|help me (?:pick|choose|find|decide))\b",
    re.I,
)
# an answer to the assistant's question that points at what was shown: "the second one", "yes, that one"
ANSWER = re.compile(
    r"^\W*(?:(?:yes|yeah|yep|sure|ok(?:ay)?|no|nope)\W+)?(?:the (?:first|second|third|last) one|that one|this one|"
    r"either|both|neither)\b",
    re.I,
)


@dataclass(frozen=True)
class GoalRule:
    name: str
    when: Callable[[str, str, Slots, Sequence[str]], bool]
    goal: Callable[[Sequence[str]], Goal]


def _last(goals: Sequence[str], among: Sequence[str] = ("search", "recommendation", "qa")) -> Goal | None:
    return next((g for g in reversed(goals) if g in among), None)  # type: ignore[return-value]


def _question(message: str) -> bool:
    return bool(acts.QUESTION.search(message))


def _asks_terms_of_a_product(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    """An after-sales question about a product under discussion, not about an order ("can I return it if it
    doesn't fit?", "how long is the warranty on that one?"): a question about the product."""
    about_it = bool(acts.REFERS.search(message)) and _question(message) and not slots.order_id
    return intent in AFTER_SALES and about_it and slots.history == "none" and _last(goals, SHOPPING_GOALS) is not None


def _pleasantry(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    return not slots.products() and bool(acts.PLEASANTRY.match(message.strip()))


def _answer(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    """An answer that refers to what was shown ("the second one", "that one") in a conversation with a goal."""
    return bool(ANSWER.match(message)) and _last(goals) is not None and intent != "chitchat"


def _asks_about_product(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    about = intent == "product_question" or slots.card_question != "none"
    return about and not acts.ASKS_FOR_PRODUCTS.search(message)


def _asks_for_products(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    return (
        intent in ("product_search", "product_question")
        and _question(message)
        and bool(acts.ASKS_FOR_PRODUCTS.search(message))
    )


def _wants_advice(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    return intent in ("recommendation", "comparison") or bool(slots.need)


def _goes_on(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    """Not a question: a preference, a constraint, an answer ("around $20", "paperback please") in a
    conversation already searching or being advised."""
    return intent == "product_search" and not _question(message) and _last(goals, SHOPPING_GOALS) is not None


def _states_a_want(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    """A want stated, not asked ("I'm looking for a tent for the family"): the shopper is to be advised; a
    question for products ("do you have 4-person tents?") is a search."""
    return intent == "product_search" and (not _question(message) or bool(DISCLOSES.search(message)))


def _talk(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    return intent in ("chitchat", "out_of_scope")


def _always(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> bool:
    return True


def _fixed(goal: Goal) -> Callable[[Sequence[str]], Goal]:
    return lambda goals: goal


# First match wins.
GOAL_RULES: list[GoalRule] = [
    GoalRule("goal-asks-terms-of-a-product", _asks_terms_of_a_product, _fixed("qa")),
    GoalRule("goal-service", lambda m, i, s, g: i in AFTER_SALES, _fixed("service")),
    GoalRule("goal-pleasantry", _pleasantry, _fixed("meta")),
    GoalRule("goal-answer-goes-on", _answer, lambda goals: _last(goals) or "meta"),
    GoalRule("goal-asks-about-product", _asks_about_product, _fixed("qa")),
    GoalRule("goal-asks-for-products", _asks_for_products, _fixed("search")),
    GoalRule("goal-wants-advice", _wants_advice, _fixed("recommendation")),
    GoalRule("goal-goes-on", _goes_on, lambda goals: _last(goals, SHOPPING_GOALS) or "search"),
    GoalRule("goal-states-a-want", _states_a_want, _fixed("recommendation")),
    GoalRule("goal-talk", _talk, _fixed("meta")),
    GoalRule("goal-search", _always, _fixed("search")),
]


def goal_of(message: str, intent: str, slots: Slots, goals: Sequence[str]) -> tuple[Goal, str]:
    """The goal of this turn, given its reading and the goals of the turns before (oldest first), with the name
    of the rule that decided it."""
    for rule in GOAL_RULES:
        if rule.when(message, intent, slots, goals):
            return rule.goal(goals), rule.name
    raise AssertionError("the last goal rule always matches")
