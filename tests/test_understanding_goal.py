"""The conversation's goal (``assistant/understanding/goal.py``): each goal rule on a turn where it decides, and
the goal going on across turns (an answer, a preference, a constraint keep the goal of the turns before)."""

from __future__ import annotations

import pytest

from assistant.understanding import Evidence, LLMReading, Slots, understand
from assistant.understanding.goal import GOAL_RULES, goal_of

PEANUT = Slots(query="peanut butter", items=["peanut butter"])
VOCABULARY = frozenset({"milk", "eggs", "bread", "cheese", "butter", "peanut", "coffee", "tent", "shoes", "pens"})


# rule name -> (message, intent, slots, goals before, the goal it must decide)
CASES = {
    "goal-asks-terms-of-a-product": ("can I return it if it doesn't fit?", "return_refund", Slots(),
                                     ["recommendation"], "qa"),
    "goal-service": ("where is my order?", "order_status", Slots(), ["search"], "service"),
    "goal-pleasantry": ("thanks a lot, bye", "chitchat", Slots(), ["recommendation"], "meta"),
    "goal-answer-goes-on": ("yes, the second one", "product_search", Slots(product_refs=[2]),
                            ["recommendation", "qa"], "qa"),
    "goal-asks-about-product": ("is it waterproof?", "product_question", PEANUT, ["search"], "qa"),
    "goal-asks-for-products": ("do you have it in black?", "product_search", PEANUT, ["qa"], "search"),
    "goal-wants-advice": ("what would you suggest for a beginner?", "recommendation", Slots(), [], "recommendation"),
    "goal-goes-on": ("around 100 dollars", "product_search", Slots(budget_max=100), ["recommendation", "qa"],
                     "recommendation"),
    "goal-states-a-want": ("I need shoes for my son, he just started running", "product_search",
                           Slots(query="shoes"), [], "recommendation"),
    "goal-talk": ("who won the game last night", "out_of_scope", Slots(), [], "meta"),
    "goal-search": ("what about black ballpoint pens?", "product_search", Slots(query="black ballpoint pens"), [],
                    "search"),
}  # fmt: skip


def test_every_goal_rule_has_a_case():
    assert [r.name for r in GOAL_RULES] == list(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_goal_rule(name):
    message, intent, slots, before, expected = CASES[name]
    assert goal_of(message, intent, slots, before) == (expected, name)


def test_near_misses():
    # an after-sales question with no product conversation, or naming an order, is service
    assert goal_of("can I return it?", "return_refund", Slots(), [])[0] == "service"
    assert goal_of("is it shipped yet?", "order_status", Slots(order_id="123456"), ["search"])[0] == "service"
    # small talk is talk whatever came before; a question about a product that asks for others is a search
    assert goal_of("yes", "chitchat", Slots(), ["recommendation"])[0] == "meta"
    assert goal_of("are there any cheaper ones?", "product_question", PEANUT, ["qa"])[0] == "search"
    # a constraint after a search keeps the search (not advice), and a preference there does not start advice
    assert goal_of("the paperback please", "product_search", PEANUT, ["search"])[0] == "search"
    assert goal_of("I like the crunchy kind", "product_search", PEANUT, ["search", "qa"])[0] == "search"
    # a want stated is advice; asked as a question for products, a search
    assert goal_of("I'm looking for a tent", "product_search", Slots(query="tent"), [])[0] == "recommendation"
    assert goal_of("do you have 4 person tents?", "product_search", Slots(query="tent"), [])[0] == "search"
    # a pleasantry beside a product request is no pleasantry
    assert goal_of("thanks! and some cheese", "product_search", Slots(query="cheese"), ["qa"])[1] != "goal-pleasantry"


def test_the_goal_goes_on_through_the_spine():
    """Real rule table: a recommendation asked for, then a budget and a preference, then a question about a card,
    then a pleasantry; each turn's goal and the goal rule in its trace."""

    def turn(message, goals, intent="product_search", previous=None):
        ev = Evidence(message, LLMReading(intent=intent), previous=previous, vocabulary=VOCABULARY,
                      in_context=bool(goals), goals=goals)  # fmt: skip
        return understand(ev)

    goals: list[str] = []
    for message, expected in [
        ("hi", "meta"),
        ("any good ideas for a tent for a family trip?", "recommendation"),
        ("under $200", "recommendation"),
        ("something easy to set up", "recommendation"),
        ("how heavy is it?", "qa"),
        ("do you have sleeping bags too?", "search"),
        ("great, thank you!", "meta"),
    ]:
        u = turn(message, list(goals), previous=PEANUT if goals else None)
        assert u.goal == expected, (message, u.goal, u.trace)
        assert u.trace[-1].startswith("goal-")
        goals.append(u.goal)
