"""Parsers for the dialogue acts of ordinary shopping conversation, exact where a small model is weak:

- a need or occasion ("things for a party", "I have a cold") -> the need, and the catalogue items it calls for
  (``needs.toml``, a small curated map; other needs go to the catalogue's own taxonomy, ``Catalogue.related``);
- a question about the cards shown ("which one is cheapest?", "is the second a store brand?") -> what it asks;
- a question about the shopper's own purchases ("what did I buy last time?", "what do I usually get?").

Word lists live in ``words.toml`` beside this module.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from functools import cache
from importlib import resources

from assistant.understanding.schema import CardQuestion, History


@cache
def words() -> dict[str, list[str]]:
    """The word lists of ``words.toml``, each split into its words."""
    raw = tomllib.loads(resources.files("assistant.understanding").joinpath("words.toml").read_text())
    return {name: text.split() for name, text in raw.items()}


@cache
def needs() -> dict[str, dict]:
    return tomllib.loads(resources.files("assistant.understanding").joinpath("needs.toml").read_text())["need"]


def _any(names: list[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(names) + r")\b", re.I)


# a part of a message that sets the scene ("I'm making lasagna tonight"): not a product (``phrases.py``)
CONTEXT = re.compile(
    r"\b(?:making|cooking|baking|preparing|hosting|having|planning|want to make|going to make)\b", re.I
)


# -- needs and occasions ----------------------------------------------------------------------------------
_NEED_PHRASE = re.compile(
    r"\b(?:for|hosting|throwing|having|planning|organi[sz]ing|going to|going on|off to|packing for)\s+"
    r"(?:(?:a|an|my|our|the|this|his|her|their)\s+)?((?:[a-z'-]+\s+){0,2}?(?:party|trip|picnic|barbecue|bbq|cookout|"
    r"shower|dinner|lunch|lunches|breakfast|brunch|night|weekend|holiday|game|gathering|celebration|birthday|"
    r"wedding|camping|hike|holidays|christmas|thanksgiving|halloween|easter|potluck|sleepover|school|office|"
    r"road trip|movie night|date night|guests?|kids?|baby|toddler|puppy|kitten|dog|cat|diet|workout|gym|"
    r"beach|vacation))\b",
    re.I,
)
_AILMENT = re.compile(r"\b(?:i(?:'ve| have)? (?:got |have )?|i'm |i am |suffering from |my (?:kid|son|daughter|husband|"
                      r"wife) has )(?:a |the |some )?((?:bad |terrible |awful )?(?:cold|flu|cough|headache|"
                      r"hangover|sore throat|hay fever|allergies|heartburn|upset stomach|fever|sunburn|"
                      r"dry skin|stuffy nose|runny nose|sick|diarrh?o?ea|constipat\w*))\b", re.I)  # fmt: skip


def need_of(text: str, names_product: Callable[[str], bool] = lambda _: False) -> str | None:
    """The occasion or problem a message is about ("snacks for a party" -> "party"), or None. A need's word
    that names a product with the word after it is no need (``names_product``: "bbq sauce", "birthday cards",
    "cough drops"; not "party snacks", whose second word is generic)."""
    low = text.lower()
    generic = set(words()["generic"]) | {w for need in needs().values() for p in need["words"] for w in p.split()}
    found = []
    for name, need in needs().items():
        if m := _any([re.escape(w) for w in need["words"]]).search(low):
            after = re.match(r"\s+([a-z]+)", low[m.end() :])
            if after and after.group(1) not in generic and names_product(f"{m.group(0)} {after.group(1)}"):
                continue
            found.append((len(m.group(0)), name))
    if found:
        return max(found)[1]  # the longest phrase named: "hay fever" over "fever"
    if m := _AILMENT.search(low):
        return m.group(1).strip()
    if m := _NEED_PHRASE.search(low):
        return m.group(1).strip()
    return None


def need_items(need: str) -> list[str]:
    """The catalogue items the curated map gives for a need ([] when the need is not in the map)."""
    entry = needs().get(need)
    return list(entry["items"]) if entry else []


def need_label(need: str) -> str:
    """How the lead-in names the need ("a party", "your cold")."""
    entry = needs().get(need)
    return entry["label"] if entry else f"your {need}"  # "your wedding", "your sore throat"


# -- questions about the cards shown ----------------------------------------------------------------------
_CARD_PATTERNS: list[tuple[CardQuestion, re.Pattern[str]]] = [
    ("unit_price", re.compile(r"\b(?:unit price|price per|per (?:oz|ounce|pound|lb|unit|count|item)|cost per)\b",
                              re.I)),
    ("cheapest", re.compile(r"\b(?:which|what)\b.*\b(?:cheapest|least expensive|lowest price|best price|best value)\b"
                            r"|\b(?:the )?cheapest (?:one|of (?:them|these|those)|here)\b", re.I)),
    ("priciest", re.compile(r"\b(?:which|what)\b.*\b(?:most expensive|priciest|dearest|highest price)\b", re.I)),
    ("biggest", re.compile(r"\b(?:which|what)\b.*\b(?:biggest|largest|most (?:oz|ounces))\b|\bbiggest one\b", re.I)),
    ("smallest", re.compile(r"\b(?:which|what)\b.*\bsmallest\b|\bsmallest one\b", re.I)),
    ("brand", re.compile(r"\b(?:store[- ]brand|own[- ]brand|house brand|generic|name brand|national brand|"
                         r"what brand|which brand|who makes|brand is)\b", re.I)),
    ("size", re.compile(r"\b(?:what size|which size|how big|how large|how much (?:is )?in|how many (?:oz|ounces|"
                        r"grams|count|pieces|in)|size of|what'?s the size|package size|how heavy|weight)\b", re.I)),
    ("price", re.compile(r"\b(?:how much|what(?:'s| is| does)? (?:it|that|the \w+(?: one)?) cost|price of|"
                         r"what'?s the price|cost of|how expensive)\b", re.I)),
]  # fmt: skip
_NOT_LISTED = re.compile(
    r"\b(ingredients?|gluten|calories|nutrition\w*|allergens?|nuts?|peanuts?|dairy|lactose|vegan|vegetarian|"
    r"kosher|halal|sugar|sodium|salt|protein|caffeine|expir\w*|best before|shelf life|made in|origin|reviews?|"
    r"ratings?|organic|sugar[- ]free|fat)\b",
    re.I,
)
_ABOUT_SHOWN = re.compile(
    r"\b(it|that|this|they|them|these|those|one|ones|first|second|third|fourth|fifth|last)\b|\b(does|do|is|are)\b",
    re.I,
)


# "is there a store brand version?", "do you have a name brand?": a refinement, not a question about a card
_ASKS_FOR_ANOTHER = re.compile(r"\b(?:is there|are there|do you have|have you got|got any|any)\b", re.I)


def card_question(text: str) -> tuple[CardQuestion, str | None]:
    """What a question about the shown cards asks ("none" when it is no such question); for a fact the catalogue
    does not hold (ingredients, calories …), ("not_listed", the word asked about)."""
    if not _is_question(text):
        return "none", None
    if (m := re.search(r"\bhow (?:much|many)\s+(?:grams of\s+)?(\w+)", text, re.I)) and _NOT_LISTED.fullmatch(
        m.group(1)
    ):
        return "not_listed", m.group(1).lower()  # "how much sugar is in it?"
    for kind, pattern in _CARD_PATTERNS:
        if pattern.search(text) and not (kind == "brand" and _ASKS_FOR_ANOTHER.search(text)):
            return kind, None
    if (m := _NOT_LISTED.search(text)) and _ABOUT_SHOWN.search(text):
        return "not_listed", m.group(1).lower()
    return "none", None


def _is_question(text: str) -> bool:
    if re.search(r"\b(?:is|are|does|do|has|have) (?:it|that|this|they|these|those|that one|this one)\b", text, re.I):
        return True  # "and the second one, is that a store brand"
    return text.rstrip().endswith("?") or bool(
        re.match(
            r"^\W*(?:(?:and|so|ok|okay|also|but)\W+)?(does|do|is|are|has|have|can|what|what's|whats|which|how|any|"
            r"tell me)\b",
            text,
            re.I,
        )
    )


# -- how a turn is phrased (read by the rule table, spine.py) ----------------------------------------------
QUESTION = re.compile(r"\?\s*$|^\W*(what|which|how|is|are|does|do|can|could|tell me|any)\b", re.I)

OPEN_REQUEST = re.compile(
    r"\b(any (?:good )?(?:ideas|suggestions|recommendations)|what (?:would|do) you (?:suggest|recommend)|"
    r"what'?s (?:good|popular|best)|something (?:good|nice|tasty|healthy|special|different|new)|a gift|gift for|"
    r"(?:do you have|got) anything (?:for|like)|what (?:goes|would go) (?:well )?with|help me (?:choose|pick|decide)|"
    r"which (?:one )?should i|i'?m not sure what|i (?:really )?(?:like|love|prefer|enjoy)|"
    r"i'?m (?:a (?:big )?)?(?:fan of|into)|\beither\b.+\bor\b|"
    r"(?:looking|searching|shopping) for (?:some|something|a good|a nice|ideas)|"
    r"i (?:need|want) (?:something|some ideas)|"
    r"what (?:kind|type|sort)s? of|(?:any|some) (?:recommendations?|suggestions?)|"
    r"for my (?:son|daughter|wife|husband|mom|mum|dad|mother|father|kids?|friend|boyfriend|girlfriend|partner|"
    r"family)|(?:good|best|nice|great|perfect|decent|top|popular|suitable|ideal|favou?rite|quality|recommended) "
    r"(?:[a-z]+ )?(?:for|to|with|that|which|one|ones|brand|option|choice|[a-z]+s)|"
    r"(?<!looking )(?<!searching )(?<!shopping )(?<!look )for (?:a|an|my|our|his|her|their) (?!order|refund|return)"
    r"[a-z]+|something (?:for|to|that|which|with)|"
    r"to go with|goes (?:well )?with|pairs? (?:well )?with|"
    # a preference stated, hedged or between options: "probably something light", "romance or classics"
    r"probably|maybe|perhaps|preferably|ideally|i think|i guess|i'?d prefer|rather|"
    r"(?:what|which|any) (?:genre|style|flavou?r|kind|type|sort|colou?r)s?|"
    r"(?!more or less)[a-z]{3,} or (?!so\b)[a-z]{3,})\b",
    re.I,
)

# a question about a product ("is it waterproof?", "how much is the blue one?", "what's the size?")
PRODUCT_QUESTION = re.compile(
    r"^\W*(?:(?:and|so|ok|okay|also|but|hmm|well)\W+)*(?:does|do|is|are|can|will|would|has|have|did)\s+"
    r"(?:it|they|this|that|these|those|the|this one|that one|any of (?:them|these))\b|"
    r"\b(?:how (?:much|long|big|many|heavy|old|large)|what(?:'s| is| are)? (?:the|its|their) (?:price|size|colou?r|"
    r"material|weight|title|name|brand|author|difference|rating|warranty|battery|capacity|ingredients?|flavou?r))\b",
    re.I,
)

# a question that asks for products, not about one: "do you have it in black?", "are there any under $50?"
ASKS_FOR_PRODUCTS = re.compile(
    r"\b(?:do|does|did) (?:you|the (?:shop|store)|y'?all) (?:have|sell|carry|stock|offer|got)\b|\bhave you got\b|"
    r"\b(?:is|are) there (?:any )?(?:other|more|cheaper|bigger|smaller|similar|one|ones)\b|\bare there any\b|"
    r"\bgot any\b|\bany (?:other|more)\b|"
    r"\b(?:what|which) (?:\w+ ){0,3}(?:do you (?:have|sell|carry)|are there|are available|can i (?:get|buy))\b|"
    r"\b(?:can|could) (?:i|you) (?:find|get|see|show)\b|\bshow me\b|\bwhere (?:can|do) i (?:find|get|buy)\b|"
    r"\b(?:anything|something|one|ones) (?:cheaper|bigger|smaller|else|similar|with|without|under|below)\b",
    re.I,
)
REFERS = re.compile(r"\b(it|its|it's|they|them|their|this one|that one|these|those|this|that)\b", re.I)
REQUEST = re.compile(r"\b(show|find|looking|look for|search|recommend|suggest|want|need|get me|give me|any other|"
                      r"something else|instead)\b", re.I)  # fmt: skip

SMALL_TALK = re.compile(
    r"^\W*(hi|hello|hey|thanks?|thank you|thx|ty|cheers|bye|goodbye|good (?:morning|evening|night|afternoon)|ok|okay|"
    r"great|cool|nice|awesome|perfect|how are you|nice to meet|you'?re (?:great|welcome|the best))\b",
    re.I,
)


# talk around shopping: "hi", "thanks a lot", "bye", "how are you?", "that's all"
PLEASANTRY = re.compile(
    r"^\W*(?:(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening|day)|thanks?|thank you|thx|ty|cheers|bye|goodbye|"
    r"see you|have a (?:nice|good|great) (?:day|one|evening)|how are you|nice to meet you|great|awesome|perfect|"
    r"cool|nice|wonderful|excellent|lovely|ok(?:ay)?|alright|that'?s (?:all|it|everything)|nothing else|no more|"
    r"(?:you'?ve been|you are|you'?re) (?:very |so |really )?(?:helpful|great|kind|the best)|"
    r"(?:i'?ll|let me) (?:think about it|have a look|check)|(?:so )?much|a lot|very|for (?:your|the) help|"
    r"for helping|you|me|all|everything|today|again|bye|for now|one|that|is|was|it|no|for|and|so)\W*)+$",
    re.I,
)
# a pleasantry leading into the real message: "ok, great!", "thanks so much." before "does it come in blue?"
_LEADING_PLEASANTRY = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|great|thanks?|thank you(?: so much| very much)?|cool|nice|perfect|awesome|alright|"
    r"sounds good|got it|i see|hmm+|oh|wow|yes|yeah|sure)\W+)+(?=\w)",
    re.I,
)


def after_pleasantry(text: str) -> str:
    """The message without a pleasantry that only leads into it ("Great, thanks! Is it waterproof?" -> "Is it
    waterproof?"); the whole message when nothing follows it."""
    return _LEADING_PLEASANTRY.sub("", text, count=1)


# an acknowledgement or a pause: "sounds good", "ok let me think", "got it", "that's all"
ACKNOWLEDGEMENT = re.compile(
    r"^\W*(?:ok(?:ay)?|sounds|great|alright|all right|yes|yeah|yep|no|nope|sure|fine|cool|nice|perfect|got it|"
    r"i see|let me|i'?ll (?:think|take|check|have a look)|hmm+|right|understood|awesome|"
    r"that'?s (?:it|all|fine|great|good))\b",
    re.I,
)


# -- questions about the shopper's own purchases ----------------------------------------------------------
_LAST = re.compile(
    r"\bwhat (?:did|have) i (?:just |last )?(?:buy|bought|order|ordered|get|got|purchase|purchased)\b|"
    r"\bwhat (?:was|is|were) (?:in|on) (?:my|the) (?:last|latest|previous|most recent) (?:order|basket|receipt)\b|"
    r"\bmy (?:last|latest|previous|most recent) (?:purchase|shopping|trip|basket|receipt)\b|"
    r"\blast time i (?:bought|ordered|shopped|was here|came)\b|\bwhat was in my (?:last )?(?:order|basket|cart)\b|"
    r"\b(?:order|buy) (?:it |that |them )?again\b|\breorder\b|"
    r"\bwhat i (?:got|bought|ordered|purchased) (?:last time|last week|before|the other day)\b|"
    r"\blast time i (?:got|was in)\b|\bdid i (?:buy|get|order) [\w' -]{1,40}? (?:last time|last week|before)\b",
    re.I,
)
_USUAL = re.compile(
    r"\bwhat do i (?:usually|normally|always|often|typically|regularly) (?:buy|get|order|purchase)\b|"
    r"\bmy (?:usual|regular|favou?rite|go-to)(?: \w+)?\b|\bwhat i (?:usually|normally|always) (?:buy|get)\b|"
    r"\b(?:my|our) (?:purchase|buying|shopping) history\b|\bwhat (?:do|did) i buy (?:most|the most|often)\b|"
    r"\bthe usual\b",
    re.I,
)


_ORDERS = re.compile(
    r"\b(?:my|our) (?:recent |past |previous |old |last few |latest )?(?:orders?|oders?|ordres?|order history)\b|"
    r"\borders? (?:have |did )?i (?:placed|made|put in)\b|\bwhen (?:did|do) i last (?:shop|order|buy|come|visit)\b|"
    r"\bwhen was my last (?:order|visit|trip|shop)\b|\bhow (?:many|often) (?:orders|times) (?:have|did) i\b",
    re.I,
)


def history_question(text: str) -> History:
    """A question about the shopper's own purchases: the last order's items, what they usually buy, or their
    orders ("my recent orders", "when did I last shop here?")."""
    if _USUAL.search(text):
        return "usual"
    if _LAST.search(text):
        return "last_order"
    if _ORDERS.search(text) and not re.search(r"\b(?:where|track|status|arriv|deliver|cancel|return)", text, re.I):
        return "orders"
    return "none"
