"""Is the message phrased as a shopping request? Part of the scope decision (``spine.py``: rules "out-of-scope"
and "shopping-not-declined") on whether a message is outside what a shop assistant does (poems, weather, trivia).

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


def is_shopping_request(message: str) -> bool:
    """Asked for as a product: a shopping phrase, or neither a question nor a task ("a 55 inch TV")."""
    question = QUESTION_OR_TASK.search(message) or message.rstrip().endswith("?")
    return bool(SHOPPING_REQUEST.search(message)) or not question
