"""The understanding spine: one ordered table of named rules over one turn's ``Evidence``.

Each ``Rule(name, when, then)`` reads the evidence and the reading decided so far (a ``Draft``); when ``when``
holds, ``then`` changes the draft and the rule's name joins the ``trace`` (logged, and shown in the copilot's
timeline). Rules run in table order, so a later rule overrules an earlier one; every threshold comes from
``Evidence.thresholds`` (``kefu.settings.Thresholds``). The order, in short:

1. who reads the intent: the model; the classifier when the model is down or sure; guards on a small model's
   guesses (after-sales, comparison);
2. explicit words: compare, recommend, refine, an order id, catalogue words;
3. the dialogue acts of real conversation: a question about the shopper's purchases, about the cards shown, a
   shopping list, a need, a refinement of the last search without product words, an open request;
4. slots: the parsers' exact values win; the model's product words and brand count only when the shopper said them;
5. scope: decline what is outside shopping unless the shop's own evidence says it is shopping; read by the rules
   alone (no classifier, no model), a search whose words name nothing the shop sells is no search.

The product phrases themselves (``Evidence.phrases`` / ``items``) come from ``phrases.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.understanding import acts
from assistant.understanding.catalogue import is_catalogue_word
from assistant.understanding.evidence import Evidence
from assistant.understanding.goal import goal_of
from assistant.understanding.phrases import knows
from assistant.understanding.rules import COMPARE_WORDS, RECOMMEND_WORDS, stage_and_score
from assistant.understanding.schema import AFTER_SALES, SHOPPING, Slots, Understanding
from assistant.understanding.scope import SHOPPING_REQUEST, is_shopping_request

# what the parsers may find that constrains a search ("under $3", "store brand", "not the diet one", "cheaper")
CONSTRAINTS = frozenset({"refinement", "budget_max", "budget_min", "store_brand", "name_brand", "exclude", "brand"})
EXPLICIT_CONSTRAINTS = frozenset({"refinement", "store_brand", "name_brand", "exclude"})  # more than a budget


@dataclass
class Draft:
    """The reading being decided."""

    intent: str = "product_search"
    slots: Slots = field(default_factory=Slots)
    refining: bool = False  # the turn refines the previous search: its query and limits carry over
    expanded: bool = False  # the items are a need's products ("stuff for a party"), not words the shopper said
    trace: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    name: str
    when: Callable[[Evidence, Draft], bool]
    then: Callable[[Evidence, Draft], None]


def _set(**values) -> Callable[[Evidence, Draft], None]:
    def then(_: Evidence, d: Draft) -> None:
        for key, value in values.items():
            setattr(d, key, value)

    return then


def _p(ev: Evidence) -> float:
    return ev.prior[1] if ev.prior else 0.0


def _sure(ev: Evidence, d: Draft) -> bool:
    """The classifier is sure of the intent decided so far."""
    return ev.prior is not None and ev.prior[0] == d.intent and _p(ev) >= ev.thresholds.classifier_sure


def _shown(ev: Evidence) -> bool:
    return bool(ev.cards)


# -- 1. who reads the intent ------------------------------------------------------------------------------
def _classifier_overrules(ev: Evidence, d: Draft) -> bool:
    if ev.reading is None or ev.prior is None or ev.prior[0] == d.intent:
        return False
    t = ev.thresholds
    return _p(ev) >= t.classifier_sure or (ev.prior[0] in AFTER_SALES and _p(ev) >= t.after_sales_sure)


ORDER_WORDS = re.compile(r"\b(order|delivery|deliver|shipping|ship|refund|return|payment|pay|account|password)", re.I)


def _after_sales_unshared(ev: Evidence, d: Draft) -> bool:
    """The model's after-sales intent, and the classifier does not share it at least ``after_sales_agree``."""
    if ev.reading is None or d.intent not in AFTER_SALES:
        return False
    if ev.prior is None:  # no classifier to agree: a turn naming catalogue words or a budget is shopping
        shop_words = bool(ev.terms) or "budget_max" in ev.parsed
        return shop_words and not ev.parsed.get("order_id") and not ORDER_WORDS.search(ev.message)
    return ev.prior[0] != d.intent or _p(ev) < ev.thresholds.after_sales_agree


def _keep_after_sales_or_search(ev: Evidence, d: Draft) -> None:
    """A small model's after-sales guess the classifier does not share ("a 55 inch TV" -> account) is not trusted."""
    agrees = ev.prior is not None and ev.prior[0] in AFTER_SALES and _p(ev) >= ev.thresholds.after_sales_agree
    d.intent = ev.prior[0] if agrees and ev.prior else "product_search"


# -- 3. dialogue acts -------------------------------------------------------------------------------------
def _asks_history(ev: Evidence, d: Draft) -> bool:
    return ev.history != "none" and not ev.parsed.get("order_id")


def _asks_about_cards(ev: Evidence, d: Draft) -> bool:
    """A question about the cards shown, with no new product to look for."""
    if not _shown(ev) or ev.card_question == "none" or d.intent in AFTER_SALES:
        return False
    new = [w for w in ev.new_words.split() if w != (ev.asked_fact or "")]
    return not new or not ev.terms


def _about_cards(ev: Evidence, d: Draft) -> None:
    d.intent = "product_question"
    d.slots = Slots(card_question=ev.card_question, asked_fact=ev.asked_fact,
                    product_refs=ev.parsed.get("product_refs", []))  # fmt: skip


def _follow_up_question(ev: Evidence, d: Draft) -> bool:
    """A question in a conversation about the cards shown that names nothing new ("what are the titles?", "tell me
    more about the second one"): answered from those cards."""
    if not _shown(ev) or d.intent in AFTER_SALES or CONSTRAINTS & set(ev.parsed) or ev.items or ev.need:
        return False
    asks = bool(acts.QUESTION.search(ev.message)) or bool(ev.parsed.get("product_refs"))
    no_new = not ev.terms and not ev.new_words.strip() or (ev.parsed.get("product_refs") and not ev.terms)
    return asks and bool(no_new) and not COMPARE_WORDS.search(ev.message) and not RECOMMEND_WORDS.search(ev.message)


def _details(ev: Evidence, d: Draft) -> None:
    d.intent = "product_question"
    d.slots = Slots(card_question="details", product_refs=ev.parsed.get("product_refs", []))


def _a_list(ev: Evidence, d: Draft) -> bool:
    return len(ev.items) >= 2 and d.intent not in AFTER_SALES and ev.card_question == "none"


def _list(ev: Evidence, d: Draft) -> None:
    d.intent = "product_search"
    d.slots = Slots(items=ev.items[:8], need=ev.need)  # "hot dogs and buns for the bbq": the list, for a barbecue


def _a_need(ev: Evidence, d: Draft) -> bool:
    return ev.need is not None and d.intent not in AFTER_SALES and len(ev.items) < 2


def _need(ev: Evidence, d: Draft) -> None:
    """An occasion or problem: the shopper's own product words if they named some ("snacks for a party"),
    else what the curated map or the catalogue's taxonomy gives for it."""
    need = ev.need or ""
    need_words = set(re.findall(r"[a-z]+", " ".join(acts.needs().get(need, {}).get("words", [need])).lower()))
    # the need's own words and what it calls for are no product: "a gift … she loves baking", "road trip snacks"
    left_out = need_words | set(need.split()) | set(acts.words()["purpose"]) | set(acts.words()["generic"])
    stems = {w.removesuffix("s") for w in left_out}
    # a phrase's parts joined by "and" that are all the need's words go: "beach and sunscreen" -> "sunscreen"
    kept = [" and ".join(q for q in p.split(" and ") if {w.removesuffix("s") for w in q.split()} - stems)
            for p in ev.phrases]  # fmt: skip
    own = [p for p in kept if p and any(knows(w, ev.lexicon) for w in p.split() if w != "and")]
    d.intent = "recommendation"
    d.slots.need = need
    generic = [w for w in ev.new_words.split() if w in acts.words()["generic"]]
    if own:
        d.slots.query = own[0] if len(own) == 1 else None
        d.slots.items = own[:8]
    elif generic:  # "baby shower snacks": snacks for the need, a kind of what it calls for, not a named product
        d.slots.query = " ".join(generic)
        d.slots.items = [d.slots.query]
        d.expanded = True
    else:
        d.slots.query = None
        d.slots.items = acts.need_items(need) or ev.related(need)[:4]
        d.expanded = True


def _names_a_type(ev: Evidence, word: str) -> bool:
    """The word names a category or product type of the catalogue ("snacks", "cheese")."""
    return is_catalogue_word(word, ev.vocabulary)


def _refines_previous(ev: Evidence, d: Draft) -> bool:
    """A refinement with no product words ("only the store brand please", "anything under $3?", "other brands?")."""
    p = ev.parsed
    said = bool(CONSTRAINTS & set(p))
    explicit = bool(EXPLICIT_CONSTRAINTS & set(p))
    said = said or (ev.reading is not None and bool(ev.reading.brand.strip()) and ev.reading.brand.lower()
                    in ev.message.lower())  # fmt: skip
    return (
        ev.previous is not None
        and bool(ev.previous.query or ev.previous.items)
        and said
        and not any(_names_a_type(ev, w) for w in ev.new_words.split())  # no new product named
        and (not ev.new_words.strip() or explicit)  # "kombucha under $3?" is a new search
        and d.intent not in AFTER_SALES
        and not p.get("product_refs")
    )


def _refine(ev: Evidence, d: Draft) -> None:
    assert ev.previous is not None
    d.intent = "product_search" if ev.previous.need is None else "recommendation"
    d.refining = True
    d.slots = ev.previous.model_copy(
        update={"product_refs": [], "refinement": "none", "card_question": "none", "history": "none"}
    )
    ruled_out = {w for phrase in ev.parsed.get("exclude", []) for w in phrase.split()}
    if ruled_out and d.slots.query:  # "not the diet one" after "diet soda": soda, leaving out diet
        kept = [w for w in d.slots.query.split() if w not in ruled_out]
        d.slots.query = " ".join(kept) or d.slots.query
        d.slots.items = [d.slots.query] if len(d.slots.items) <= 1 else d.slots.items


def _continues_recommendation(ev: Evidence, d: Draft) -> bool:
    """The shopper asked for suggestions last turn and now says more of what they want ("either romance or
    classics", "under $20, for my son"): the recommendation goes on (not a new search for a named product)."""
    if ev.last_intent != "recommendation" or d.intent != "product_search" or SHOPPING_REQUEST.search(ev.message):
        return False
    return bool(ev.words or ev.parsed.get("budget_max") or ev.parsed.get("refinement"))


def _question_in_context(ev: Evidence, d: Draft) -> bool:
    """In a conversation about products, a question that is not a request for products ("which is better for
    kids?", "what's the warranty?"): a product question."""
    if not ev.in_context or d.intent not in ("product_search", "chitchat") or SHOPPING_REQUEST.search(ev.message):
        return False
    asking_for_more = acts.REQUEST.search(ev.message) or acts.OPEN_REQUEST.search(ev.message)
    asking_for_more = asking_for_more or acts.ASKS_FOR_PRODUCTS.search(ev.message)  # "do you have it in black?"
    talk = acts.SMALL_TALK.search(acts.after_pleasantry(ev.message))  # "ok! is it vegan?" asks about a product
    return bool(acts.QUESTION.search(ev.message)) and not asking_for_more and not talk


def _asks_about_a_product(ev: Evidence, d: Draft) -> bool:
    """A question about a product, in a conversation about products (or naming one): a product question."""
    asked = acts.after_pleasantry(ev.message)
    if d.intent in AFTER_SALES or ev.history != "none" or acts.SMALL_TALK.search(asked):
        return False
    if acts.PRODUCT_QUESTION.search(asked):
        return ev.in_context or bool(ev.words)
    # in a conversation about products, a question about "it" / "them" that asks for nothing new
    refers = acts.REFERS.search(ev.message) and not acts.REQUEST.search(ev.message)
    refers = refers and not acts.ASKS_FOR_PRODUCTS.search(ev.message)
    return ev.in_context and bool(refers) and bool(acts.QUESTION.search(ev.message))


# -- 4. slots ---------------------------------------------------------------------------------------------
def _product_words(ev: Evidence, d: Draft) -> bool:
    return d.intent in SHOPPING and not d.refining and not d.slots.items and d.slots.card_question == "none"


def _query_from_words(ev: Evidence, d: Draft) -> None:
    said = ev.message.lower()
    model = ev.reading.product.strip() if ev.reading is not None else ""
    if not all(w in said for w in model.lower().split()):
        model = ""  # only product words the shopper actually said
    words = ev.words
    query = words or model
    if query:
        d.slots.query = query
        d.slots.items = [query]


def _model_slots(ev: Evidence, d: Draft) -> None:
    """A capable model's slots, each only where the shopper said it (a small model is asked for the intent only)."""
    r = ev.reading
    assert r is not None
    said = ev.message.lower()
    items = [i.strip().lower() for i in r.items if i.strip() and all(w in said for w in i.lower().split())]
    if len(items) >= 2 and len(d.slots.items) < 2 and not d.refining:  # a list the parsers missed
        d.slots.items, d.slots.query = items[:8], None
    if r.need.strip() and not d.slots.need and all(w in said for w in r.need.lower().split()):
        d.slots.need = r.need.strip().lower()
    if r.brand.strip() and r.brand.strip().lower() in ev.message.lower():
        d.slots.brand = r.brand.strip()  # only a brand the shopper actually said
    if r.max_price is not None and r.max_price > 0 and "budget_max" not in ev.parsed and re.search(r"\d", ev.message):
        d.slots.budget_max = r.max_price


def _parsed_slots(ev: Evidence, d: Draft) -> None:
    for key in (
        "budget_min",
        "budget_max",
        "product_refs",
        "order_id",
        "refinement",
        "brand",
        "store_brand",
        "name_brand",
    ):
        if key in ev.parsed and not (key == "product_refs" and d.slots.history != "none"):  # "last time" is no card
            setattr(d.slots, key, ev.parsed[key])
    if "exclude" in ev.parsed:
        d.slots.exclude = list(dict.fromkeys(d.slots.exclude + ev.parsed["exclude"]))[:5]
    if ev.parsed.get("name_brand"):  # the one excludes the other
        d.slots.store_brand = False
    if ev.parsed.get("store_brand"):
        d.slots.name_brand = False


def _other_brand_after_a_brand(ev: Evidence, d: Draft) -> bool:
    return d.slots.refinement == "other_brand" and ev.previous is not None


def _exclude_previous_brand(ev: Evidence, d: Draft) -> None:
    """ "Other brands?" after a brand (or the store brand) was asked for: that brand is now ruled out."""
    assert ev.previous is not None
    d.slots.exclude_brand, d.slots.brand = ev.previous.brand, None
    d.slots.name_brand, d.slots.store_brand = ev.previous.store_brand, False  # after the store brand: name brands


def _nothing_to_find(ev: Evidence, d: Draft) -> bool:
    """ "Sounds good", "ok let me think": a product search with nothing to search for (or an acknowledgement naming
    no catalogue type), no constraint and no request for picks is small talk, not a list of popular products."""
    s, p = d.slots, ev.parsed
    asked = bool((CONSTRAINTS - {"exclude"}) & set(p))
    picks = bool(RECOMMEND_WORDS.search(ev.message) or acts.OPEN_REQUEST.search(ev.message))
    acknowledged = acts.ACKNOWLEDGEMENT.search(ev.message) and not ev.terms and not ev.carries(ev.words)
    nothing = not s.products() or acknowledged  # "ok. a toothbrush too" still asks for a toothbrush
    return (d.intent == "product_search" and bool(nothing) and not s.need and s.card_question == "none"
            and not d.refining and not asked and not p.get("product_refs") and not picks)  # fmt: skip


# -- 5. scope ---------------------------------------------------------------------------------------------
KEPT = AFTER_SALES  # intents scope never declines


def _declines(ev: Evidence, d: Draft) -> bool:
    """Outside shopping: the classifier (with the model's agreement, or sure in a shopping conversation) says so
    and nothing of the shop's own evidence says otherwise (a catalogue match, a budget, a shopping phrase)."""
    t, prior = ev.thresholds, ev.prior
    if d.intent in KEPT or d.refining or d.slots.card_question != "none" or d.slots.history != "none":
        return False
    if d.intent == "product_question" and ev.in_context:  # a follow-up about what was shown or asked for
        return False
    if prior is not None and prior[0] != "out_of_scope" and d.intent != "out_of_scope":
        return False
    p = _p(ev) if prior is not None and prior[0] == "out_of_scope" else 0.0
    needed = max(t.scope, t.scope_in_context) if ev.in_context else t.scope
    model = ev.reading.intent if ev.reading is not None else None
    agrees = model in ("out_of_scope", "chitchat") or d.intent == "out_of_scope"
    sure = (
        p >= needed or (p >= needed - t.scope_model_margin and agrees) or (prior is None and d.intent == "out_of_scope")
    )
    s = d.slots
    if not sure or s.budget_max is not None or s.budget_min is not None or is_shopping_request(ev.message):
        return False
    if len(s.items) > 1 or s.need:
        return False
    return not ev.carries(s.query or ev.message)


def _decline(ev: Evidence, d: Draft) -> None:
    d.intent, d.slots = "out_of_scope", Slots()


def _search_anyway(ev: Evidence, d: Draft) -> None:
    """Not declined, yet read as out of scope: a request for something the shop may not carry (a no-match)."""
    d.intent = "product_search"
    if not d.slots.query and not d.slots.items:
        d.slots.query = ev.words or None
        d.slots.items = [d.slots.query] if d.slots.query else []


def _names_nothing_sold(ev: Evidence, d: Draft) -> bool:
    """Read by the rules alone (no classifier, no model): a search whose words name nothing the shop sells (no
    word of its categories or product types, no catalogue match), with no shopping phrase, budget, list, need or
    card, is no search ("check my bank balance", "how's your day going")."""
    if ev.prior is not None or ev.reading is not None or d.intent not in ("product_search", "product_question"):
        return False
    s = d.slots
    if d.refining or d.expanded or s.card_question != "none" or s.history != "none" or s.need or s.order_id:
        return False
    if len(s.items) > 1 or CONSTRAINTS & set(ev.parsed) or ev.parsed.get("product_refs") or not s.products():
        return False
    if SHOPPING_REQUEST.search(ev.message):
        return False  # "do you sell lawn mowers?": a no-match, not a decline
    words = " ".join(s.products())
    return not any(is_catalogue_word(w, ev.vocabulary) for w in words.split()) and not ev.carries(words)


_ADDRESSED = re.compile(r"\b(?:are|were|do|did|would|have) you\b|\byour(?:self)?\b", re.I)


def _no_search(ev: Evidence, d: Draft) -> None:
    talk = acts.SMALL_TALK.search(ev.message) or _ADDRESSED.search(ev.message)
    d.intent, d.slots = ("chitchat" if talk else "out_of_scope"), Slots()


def _explicit(ev: Evidence, d: Draft) -> bool:
    """Explicit words may overrule the intent: not a sure classifier's, not beside an order id."""
    return not _sure(ev, d) and not ev.parsed.get("order_id")


def _refinement_searches(ev: Evidence, d: Draft) -> bool:
    """ "something cheaper" refines the last search (not a comparison or a recommendation the shopper asked for)."""
    in_shopping = ev.previous is not None or d.intent in SHOPPING
    asked = d.intent not in ("comparison", "recommendation")
    return _explicit(ev, d) and "refinement" in ev.parsed and asked and in_shopping


def _no_card_question(d: Draft) -> bool:
    return d.slots.card_question == "none"


def _tuned_intent(ev: Evidence, d: Draft) -> None:
    assert ev.tuned is not None
    d.intent = ev.tuned.intent
    if d.intent not in SHOPPING:  # an after-sales or small-talk turn searches nothing
        d.slots = Slots(order_id=d.slots.order_id, history=d.slots.history) if d.intent in AFTER_SALES else Slots()
        d.refining = False


def _to(intent: str) -> Callable[[Evidence, Draft], None]:
    return _set(intent=intent)


# The table, in order (groups as in the module's docstring): a later rule overrules an earlier one.
RULES: list[Rule] = [
    Rule("model-reads-intent",
         lambda ev, d: ev.reading is not None,
         lambda ev, d: setattr(d, "intent", ev.reading.intent)),
    Rule("classifier-reads-intent",
         lambda ev, d: ev.reading is None and ev.prior is not None,
         lambda ev, d: setattr(d, "intent", ev.prior[0])),
    Rule("sure-classifier-overrules",
         _classifier_overrules,
         lambda ev, d: setattr(d, "intent", ev.prior[0])),
    Rule("after-sales-needs-classifier",
         _after_sales_unshared,
         _keep_after_sales_or_search),
    Rule("comparison-needs-words",
         lambda ev, d: d.intent == "comparison" and not COMPARE_WORDS.search(ev.message),
         _to("product_search")),
    Rule("compare-words",
         lambda ev, d: _explicit(ev, d) and bool(COMPARE_WORDS.search(ev.message)),
         _to("comparison")),
    Rule("recommend-words",
         lambda ev, d: _explicit(ev, d) and d.intent != "comparison" and bool(RECOMMEND_WORDS.search(ev.message)),
         _to("recommendation")),
    Rule("refinement-searches",
         _refinement_searches,
         _to("product_search")),
    Rule("order-id-asks-order",
         lambda ev, d: bool(ev.parsed.get("order_id")) and d.intent in SHOPPING,
         _to("order_status")),
    Rule("catalogue-words-mean-shopping",
         lambda ev, d: d.intent in ("chitchat", "out_of_scope") and (bool(ev.terms) or "budget_max" in ev.parsed),
         _to("product_search")),
    Rule("carried-words-mean-shopping",
         lambda ev, d: d.intent == "chitchat" and bool(ev.words) and not acts.SMALL_TALK.search(ev.message)
         and ev.carries(ev.words),
         _to("product_search")),
    Rule("shopping-phrase-means-shopping",
         lambda ev, d: d.intent in ("chitchat", "out_of_scope") and bool(ev.words)
         and bool(SHOPPING_REQUEST.search(ev.message)),
         _to("product_search")),
    Rule("open-request-recommends",
         lambda ev, d: d.intent == "product_search" and bool(acts.OPEN_REQUEST.search(ev.message)),
         _to("recommendation")),
    Rule("continues-recommendation",
         _continues_recommendation,
         _to("recommendation")),
    Rule("question-in-a-shopping-conversation",
         _question_in_context,
         _to("product_question")),
    Rule("product-question",
         _asks_about_a_product,
         _to("product_question")),
    Rule("history-question",
         _asks_history,
         lambda ev, d: _set(intent="order_status", slots=Slots(history=ev.history))(ev, d)),
    Rule("question-about-cards",
         _asks_about_cards,
         _about_cards),
    Rule("follow-up-question",
         lambda ev, d: _no_card_question(d) and _follow_up_question(ev, d),
         _details),
    Rule("shopping-list",
         lambda ev, d: _no_card_question(d) and _a_list(ev, d),
         _list),
    Rule("need",
         lambda ev, d: _no_card_question(d) and _a_need(ev, d),
         _need),
    Rule("refines-previous-search",
         lambda ev, d: _no_card_question(d) and not d.slots.items and _refines_previous(ev, d),
         _refine),
    Rule("product-words",
         _product_words,
         _query_from_words),
    Rule("model-slots",
         lambda ev, d: ev.reading is not None and d.intent in SHOPPING and _no_card_question(d),
         _model_slots),
    Rule("parsed-slots",
         lambda ev, d: bool(ev.parsed),
         _parsed_slots),
    Rule("tuned-model-intent",  # the tuned model's intent, where the settings give it that field
         lambda ev, d: ev.tuned is not None and "intent" in ev.tuned_fields and d.intent != ev.tuned.intent,
         _tuned_intent),
    Rule("other-brand-excludes-previous",
         _other_brand_after_a_brand,
         _exclude_previous_brand),
    Rule("nothing-to-find-is-small-talk",
         _nothing_to_find,
         _to("chitchat")),
    Rule("pleasantry-is-small-talk",
         lambda ev, d: d.intent in SHOPPING and not ev.terms and bool(acts.PLEASANTRY.match(ev.message.strip())),
         lambda ev, d: _set(intent="chitchat", slots=Slots())(ev, d)),
    Rule("out-of-scope",
         _declines,
         _decline),
    Rule("shopping-not-declined",
         lambda ev, d: d.intent == "out_of_scope" and not _declines(ev, d),
         _search_anyway),
    Rule("rules-only-names-nothing-sold",
         _names_nothing_sold,
         _no_search),
]  # fmt: skip


def needs_model(ev: Evidence) -> bool:
    """Would the model's intent change this reading? Not when the classifier is sure, nor when the turn's own words
    decide (a question about the cards shown or about the shopper's purchases, a list, a need, a refinement of the
    last search): the rules then overrule whatever a small model says. (An order id alone does not: the model
    tells a return from a status question.)"""
    if ev.prior is not None and _p(ev) >= ev.thresholds.classifier_sure:
        return False
    d = Draft(intent="product_search")
    decisive = (
        _asks_history(ev, d) or _asks_about_cards(ev, d) or _a_list(ev, d) or _a_need(ev, d) or _refines_previous(ev, d)
    )
    return not decisive


FIELDS = ("intent", "items", "budget", "refinement", "card_question", "product_refs", "need", "history", "order_id")


def readers_of(ev: Evidence, intent: str) -> dict[str, str]:
    """Which reader filled each field: the tuned model where it was given and passed the rules' check, the model
    or the classifier for an intent they read and the rules kept, else the rules."""
    out = {f: "model" if f in ev.tuned_fields else "rules" for f in FIELDS}
    if ev.reading is not None and intent == ev.reading.intent and (ev.tuned is None or "intent" in ev.tuned_fields):
        out["intent"] = "model"
    elif ev.prior is not None and intent == ev.prior[0]:
        out["intent"] = "classifier"
    return out


def understand(ev: Evidence, rules: list[Rule] = RULES) -> Understanding:
    """Run the rule table over the evidence: the validated reading, with the names of the rules that fired."""
    d = Draft()
    for rule in rules:
        if rule.when(ev, d):
            rule.then(ev, d)
            d.trace.append(rule.name)
    stage, purchase = stage_and_score(ev.message, d.intent, d.slots)
    goal, goal_rule = goal_of(ev.message, d.intent, d.slots, ev.goals)
    return Understanding(
        intent=d.intent, stage=stage, slots=d.slots, purchase_intent=purchase,
        confirm=bool(ev.parsed.get("confirm")), goal=goal, trace=[*d.trace, goal_rule],
        named=[] if d.refining or d.expanded else d.slots.products(), readers=readers_of(ev, d.intent),
    )  # fmt: skip
