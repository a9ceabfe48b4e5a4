"""Is the message outside what a shop assistant does (poems, weather, homework, trivia, stock tips)?

The fast intent classifier's out-of-scope probability and the model's reading decide together, and the shop's
own evidence can overrule them: the classifier learnt grocery words mostly from CLINC150's off-topic domains, so
it calls "cheddar cheese under $5" out of scope with p≈0.66. A message stays a shopping turn when it

- names something the catalogue carries (``Catalogue.carries``: the no-match rule of ``retrieval/match.py``
  over its product words),
- states a budget, or
- is phrased as a shopping request ("do you sell …", "I'm looking for …"), or is not phrased as a question or a
  task at all ("a 55 inch TV", "winter tires for my car"): a request for something the shop does not carry is
  answered as a no-match, not declined.

Otherwise it is declined (``out_of_scope``) when the classifier gives out-of-scope at least ``threshold``, or at
least ``threshold - model_margin`` and the model read it as out of scope or chitchat too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from assistant.understanding import Understanding

SHOPPING_REQUEST = re.compile(
    r"\b(do|does|did) (you|the shop|the store) (sell|have|carry|stock|offer)\b|\blooking for\b|\bshopping for\b"
    r"|\bwhere (can|do) i (find|get|buy)\b|\bi(?:'d| would)? (like|need|want) (a|an|some|to (buy|order|get))\b"
    r"|\bhow much (is|are|does|do)\b|\bprice of\b|\bin stock\b|\bavailable\b|\bbuy (a|an|some)\b",
    re.I,
)
# a question or a task: what off-topic requests look like ("who won …", "write me a poem", "should I buy …")
QUESTION_OR_TASK = re.compile(
    r"^\W*(who|whom|whose|what|what's|whats|when|where|why|how|which|is|are|was|were|am|can|could|will|would|"
    r"should|shall|do|does|did|write|tell|translate|solve|explain|give|help|compose|calculate|compute|book|play|"
    r"set|remind|define|summari[sz]e|name|generate|create|make|sing|draw|predict|please)\b",
    re.I,
)
KEPT_INTENTS = {"order_status", "return_refund", "human_handoff", "complaint", "delivery", "payment", "account"}


def is_shopping_request(message: str) -> bool:
    """Asked for as a product: a shopping phrase, or neither a question nor a task ("a 55 inch TV")."""
    question = QUESTION_OR_TASK.search(message) or message.rstrip().endswith("?")
    return bool(SHOPPING_REQUEST.search(message)) or not question


def out_of_scope(
    message: str,
    u: Understanding,
    prior: tuple[str, float] | None,
    model_intent: str | None,
    carries: Callable[[str], bool],
    threshold: float = 0.5,
    model_margin: float = 0.2,
    in_context: bool = False,
) -> bool:
    """Decline this turn as outside shopping? ``carries(words)``: the catalogue has a match for them;
    ``in_context``: the conversation is already about products, so a question is most likely a follow-up
    ("how long does the battery last?") and only a sure classifier (>= 0.9) declines it."""
    if u.intent in KEPT_INTENTS or (prior is not None and prior[0] != "out_of_scope" and u.intent != "out_of_scope"):
        return False
    p = prior[1] if prior is not None and prior[0] == "out_of_scope" else 0.0
    needed = max(threshold, 0.9) if in_context else threshold
    agrees = model_intent in ("out_of_scope", "chitchat") or u.intent == "out_of_scope"
    sure = p >= needed or (p >= needed - model_margin and agrees) or (prior is None and u.intent == "out_of_scope")
    if not sure or u.slots.budget_max is not None or u.slots.budget_min is not None or is_shopping_request(message):
        return False
    return not carries(u.slots.query or message)
