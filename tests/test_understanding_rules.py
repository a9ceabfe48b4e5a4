"""Each rule of the understanding spine (``assistant/understanding/spine.py``) on its own: a turn where it fires,
with what it decides, and (where it matters) a near turn where it must not. A rule added to the table without a
case here fails ``test_every_rule_has_a_case``."""

from __future__ import annotations

import pytest

from assistant.events import ProductCard
from assistant.understanding import RULES, Evidence, LLMReading, Slots, phrases, understand
from assistant.understanding.acts import card_question, history_question, need_of
from assistant.understanding.catalogue import Lexicon, catalogue_lexicon
from assistant.understanding.reading import TurnReading
from kefu import store
from kefu.settings import Thresholds

CARDS = [
    ProductCard(product_id="1", title="Peanut butter, 18 oz", price=2.49, brand="National", size="18 OZ"),
    ProductCard(product_id="2", title="Peanut butter, 40 oz", price=5.99, brand="Private", size="40 OZ"),
]
PEANUT = Slots(query="peanut butter", items=["peanut butter"])
VOCABULARY = frozenset({"milk", "eggs", "bread", "cheese", "butter", "peanut", "coffee", "banana"})


def said(intent="product_search", product="", brand="", max_price=None) -> LLMReading:
    return LLMReading(intent=intent, product=product, brand=brand, max_price=max_price)


def read(message, reading=None, prior=None, previous=None, cards=(), **kw):
    ev = Evidence(message, reading, [prior] if prior else [], previous=previous, cards=list(cards),
                  vocabulary=VOCABULARY, **kw)  # fmt: skip
    return understand(ev)


def after_peanut_butter(message, reading=None, prior=None, **kw):
    return read(message, reading or said(), prior, previous=PEANUT, cards=CARDS, in_context=True, **kw)


# rule name -> (the reading, what it must decide)
CASES = {
    "model-reads-intent": (lambda: read("cheese", said("product_search")), lambda u: u.intent == "product_search"),
    "classifier-reads-intent": (lambda: read("I want my money back", None, ("return_refund", 0.97)),
                                lambda u: u.intent == "return_refund"),
    "sure-classifier-overrules": (lambda: read("track my package", said(product="package"), ("order_status", 0.95)),
                                  lambda u: u.intent == "order_status"),
    "after-sales-needs-classifier": (lambda: read("a 55 inch TV", said("account"), ("out_of_scope", 0.85)),
                                     lambda u: u.intent == "product_search"),
    "comparison-needs-words": (lambda: read("sweet goods under $3", said("comparison")),
                               lambda u: u.intent == "product_search"),
    "compare-words": (lambda: read("compare the first and second one", said("complaint"), previous=PEANUT),
                      lambda u: u.intent == "comparison" and u.slots.product_refs == [1, 2]),
    "recommend-words": (lambda: read("recommend me something", said("chitchat")),
                        lambda u: u.intent == "recommendation"),
    "refinement-searches": (lambda: after_peanut_butter("something cheaper", said("comparison")),
                            lambda u: u.intent == "product_search" and u.slots.refinement == "cheaper"),
    "order-id-asks-order": (lambda: read("order 31625220889?", said(product="order")),
                            lambda u: u.intent == "order_status" and u.slots.order_id == "31625220889"),
    "catalogue-words-mean-shopping": (lambda: read("cheese please", said("chitchat")),
                                      lambda u: u.intent == "product_search" and u.slots.query == "cheese"),
    "carried-words-mean-shopping": (lambda: read("mild cheddar please", said("chitchat"), carries=lambda w: True),
                                    lambda u: u.intent == "product_search" and u.slots.query == "mild cheddar"),
    "shopping-phrase-means-shopping": (lambda: read("Hello! I'm looking for a kettle", said("chitchat")),
                                       lambda u: u.intent == "product_search" and u.slots.query == "kettle"),
    "open-request-recommends": (lambda: read("any good ideas for a snack?", said()),
                                lambda u: u.intent == "recommendation"),
    "continues-recommendation": (lambda: read("something sweet, under $4", said(), previous=PEANUT,
                                              last_intent="recommendation"),
                                 lambda u: u.intent == "recommendation" and u.slots.budget_max == 4),
    "question-in-a-shopping-conversation": (lambda: after_peanut_butter("which tastes nicer on toast?", said()),
                                            lambda u: u.intent == "product_question"),
    "product-question": (lambda: read("is it gluten free?", said("chitchat"), previous=PEANUT, in_context=True),
                         lambda u: u.intent == "product_question"),
    "history-question": (lambda: read("what did I buy last time?", said("product_search")),
                         lambda u: u.intent == "order_status" and u.slots.history == "last_order"
                         and not u.slots.product_refs),
    "question-about-cards": (lambda: after_peanut_butter("which one is the cheapest?"),
                             lambda u: u.intent == "product_question" and u.slots.card_question == "cheapest"),
    "follow-up-question": (lambda: after_peanut_butter("what are the titles?"),
                           lambda u: u.intent == "product_question" and u.slots.card_question == "details"),
    "shopping-list": (lambda: read("I need milk, eggs and bread", said()),
                      lambda u: u.slots.items == ["milk", "eggs", "bread"] and u.slots.query is None),
    "need": (lambda: read("things for a party", said("chitchat")),
             lambda u: u.intent == "recommendation" and u.slots.need == "party" and len(u.slots.items) >= 3),
    "refines-previous-search": (lambda: after_peanut_butter("only the store brand please", said("chitchat")),
                                lambda u: u.slots.query == "peanut butter" and u.slots.store_brand),
    "product-words": (lambda: read("im making lasagna tonight, need noodles", said()),
                      lambda u: u.slots.query == "noodles"),  # the scene is not the product
    "model-slots": (lambda: read("milk by Horizon for 3 dollars", said(product="milk", brand="Horizon", max_price=3)),
                    lambda u: u.slots.brand == "Horizon" and u.slots.budget_max == 3),
    "parsed-slots": (lambda: read("pasta under $3", said(product="pasta", max_price=30)),
                     lambda u: u.slots.budget_max == 3),
    "tuned-model-intent": (lambda: understand(Evidence("my parcel never came", intents=[("product_search", 0.95)],
                                                       vocabulary=VOCABULARY).with_tuned(
                               TurnReading(intent="delivery"), frozenset({"intent"}))),
                           lambda u: u.intent == "delivery" and u.readers["intent"] == "model"),
    "other-brand-excludes-previous": (
        lambda: read("other brands?", said(), previous=Slots(query="peanut butter", items=["peanut butter"],
                                                             store_brand=True), cards=CARDS),
        lambda u: u.slots.refinement == "other_brand" and not u.slots.store_brand and u.slots.brand is None),
    "nothing-to-find-is-small-talk": (lambda: read("sounds good, let me think", said("product_search")),
                                      lambda u: u.intent == "chitchat"),  # the catalogue carries nothing named
    "pleasantry-is-small-talk": (lambda: read("have a great day, bye", said("product_search")),
                                 lambda u: u.intent == "chitchat" and u.slots == Slots()),
    "out-of-scope": (lambda: read("write me a poem about the sea", said("chitchat"), ("out_of_scope", 0.8)),
                     lambda u: u.intent == "out_of_scope" and u.slots == Slots()),
    "shopping-not-declined": (lambda: read("a 55 inch TV", said("out_of_scope"), ("out_of_scope", 0.8)),
                              lambda u: u.intent == "product_search" and u.slots.query == "tv"),
    "rules-only-names-nothing-sold": (lambda: read("check my bank balance", None),
                                      lambda u: u.intent == "out_of_scope" and u.slots == Slots()),
}  # fmt: skip


def test_every_rule_has_a_case():
    assert [r.name for r in RULES] == list(CASES)  # the same rules, in table order


@pytest.mark.parametrize("name", list(CASES))
def test_rule(name):
    make, decided = CASES[name]
    u = make()
    assert name in u.trace, (name, u.trace)
    assert decided(u), (name, u.model_dump(exclude_defaults=True))


def test_near_misses_leave_the_rule_out():
    # a pleasantry that names a product still asks for it; a question for products after cards is a search
    assert read("thanks, and some cheese please", said()).slots.query == "cheese"
    u = after_peanut_butter("do you have it in a smaller jar?", said("product_question"))
    assert u.intent == "product_search" and "question-in-a-shopping-conversation" not in u.trace
    # beside a need, a gift is what the request is for: the need's products, not gift wrap
    ev = Evidence("a gift for my mom, she loves baking", said("recommendation"), vocabulary=VOCABULARY | {"gift"})
    u = understand(ev)
    assert u.slots.need == "baking" and "gift" not in (u.slots.query or "") and "flour" in u.slots.items
    # a pleasantry leading into a question about the product does not make it small talk
    assert after_peanut_butter("great, thanks! is it crunchy?", said("chitchat")).intent == "product_question"
    # a new product after a search is a new search, not a refinement or a question about the cards
    u = after_peanut_butter("strawberry jam under $3")
    assert "refines-previous-search" not in u.trace and u.slots.query == "strawberry jam" and u.slots.budget_max == 3
    assert "question-about-cards" not in after_peanut_butter("what is the cheapest coffee?").trace
    # "mac and cheese" is one product; "milk and eggs" two
    assert read("mac and cheese", said()).slots.items == ["mac and cheese"]
    assert read("milk and eggs", said()).slots.items == ["milk", "eggs"]
    # a sure classifier keeps its after-sales intent against explicit words
    assert read("compare prices on my refund", said("return_refund"), ("return_refund", 0.97)).intent == "return_refund"
    # a question about the cards needs cards to ask about
    assert read("which one is the cheapest?", said()).slots.card_question == "none"
    # history words inside an order question keep the order id
    assert read("what did I buy in order 31625220889?", said("order_status")).slots.order_id == "31625220889"


def test_an_acknowledgement_that_names_a_product_still_asks_for_it():
    u = read("ok. a toothbrush too", said(), carries=lambda words: words == "toothbrush")
    assert u.intent == "product_search" and u.slots.query == "toothbrush"


def test_without_a_classifier_a_small_models_after_sales_guess_needs_after_sales_words():
    assert read("cheese under $5", said("delivery")).intent == "product_search"
    assert read("when will my cheese be delivered?", said("delivery")).intent == "delivery"


def test_thresholds_come_from_one_settings_object():
    text, prior = "track my package", ("order_status", 0.7)
    assert read(text, said(product="package"), prior).intent == "order_status"  # after-sales from 0.6
    strict = Thresholds(after_sales_sure=0.8, after_sales_agree=0.8)
    assert read(text, said(product="package"), prior, thresholds=strict).intent == "product_search"


@pytest.mark.parametrize(
    "text,items",
    [
        ("I need milk, eggs and bread", ["milk", "eggs", "bread"]),
        ("add bananas, peanut butter and coffee to my list", ["bananas", "peanut butter", "coffee"]),
        ("get me some milk + eggs + butter", ["milk", "eggs", "butter"]),
        ("peanut butter", ["peanut butter"]),
        ("im making lasagna tonight, need noodles", ["noodles"]),
    ],
)
def test_shopping_lists(text, items):
    assert phrases.items(text, Lexicon(vocabulary=VOCABULARY, known=VOCABULARY)) == items


def test_needs_card_questions_and_history_parsers():
    assert need_of("snacks for the game night") == "party" and need_of("my son has a bad cough") == "cold"
    assert need_of("what helps with hay fever") == "hay_fever"  # the longest phrase wins over "fever"
    assert need_of("something for a camping weekend") == "camping" and need_of("peanut butter") is None
    assert need_of("anything for a housewarming party?") == "party"
    assert card_question("which of these is the smallest?") == ("smallest", None)
    assert card_question("how much is the second one?") == ("price", None)
    assert card_question("does it have peanuts?") == ("not_listed", "peanuts")
    assert card_question("store brand peanut butter") == ("none", None)  # not a question: a search
    assert history_question("what do I usually get?") == "usual" and history_question("reorder my last basket")
    assert history_question("show me more") == "none"


def test_the_model_is_asked_only_when_its_reading_could_change_the_outcome():
    from assistant.understanding.spine import needs_model

    def ev(message, **kw):
        return Evidence(message, None, [], vocabulary=VOCABULARY, **kw)

    shown = {"previous": PEANUT, "cards": CARDS, "in_context": True}
    assert needs_model(ev("cheese")) and needs_model(ev("return order 31625220889"))  # return or status?
    assert not needs_model(ev("which one is the cheapest?", **shown))
    assert not needs_model(ev("only the store brand please", **shown))
    assert not needs_model(ev("I need milk, eggs and bread")) and not needs_model(ev("things for a party"))
    assert not needs_model(ev("what did I buy last time?"))
    sure = Evidence("hi there", None, [("chitchat", 0.97)])
    assert not needs_model(sure) and needs_model(Evidence("hi there", None, [("chitchat", 0.6)]))


def test_a_capable_models_slots_count_only_where_the_shopper_said_them():
    list_reading = LLMReading(intent="product_search", items=["oat milk", "rye bread", "caviar"])
    u = read("grab oat milk rye bread", list_reading)  # no separator: the parsers see one product
    assert u.slots.items == ["oat milk", "rye bread"] and u.slots.query is None  # "caviar" was never said
    assert read("a snack", LLMReading(intent="product_search", need="birthday")).slots.need is None


# -- product phrases against the real catalogue's words (``phrases.py``) ------------------------------------
@pytest.fixture(scope="module")
def lexicon(demo_store) -> Lexicon:
    with store.connect(demo_store) as con:
        return catalogue_lexicon(con)


@pytest.mark.parametrize(
    "text,items",
    [
        # quantities, measures and packages are left out; package words that name the product stay
        ("two dozen eggs please", ["eggs"]),
        ("a jar of mayonnaise", ["mayonnaise"]),
        ("orange juice, the large carton", ["orange juice"]),
        ("kitchen trash bags, 30 count", ["kitchen trash bags"]),
        ("a 6 pack of root beer", ["root beer"]),
        # prices and budget words belong to the budget
        ("frozen peas, nothing more than four bucks", ["frozen peas"]),
        # purpose phrases, request words, quality words
        ("sponges for the kitchen sink", ["sponges"]),
        ("is there any fresh salmon?", ["salmon"]),
        ("where can i find the brown rice", ["brown rice"]),
        # a scene beside the request is not a product
        ("my kids love pancakes, can you get me some syrup", ["syrup"]),
        ("we're out of coffee, and filters too", ["coffee", "filters"]),
        # lists: both sides name products; a dish named with "and" stays whole
        ("bread and jam", ["bread", "jam"]),
        ("crackers n cheese", ["crackers", "cheese"]),
        ("macaroni and cheese and apple juice", ["macaroni and cheese", "apple juice"]),
        ("dog treats and dog shampoo", ["dog treats", "dog shampoo"]),
        # typos corrected against the catalogue's words; real words left alone
        ("chocolte milk", ["chocolate milk"]),
        ("creamy soup", ["creamy soup"]),
        # brands left out; a brand said with a bare head word stands for its product
        ("skippy peanut butter", ["peanut butter"]),
        ("got any kleenex?", ["facial tissues"]),
        # nothing to find
        ("thanks, that's all for now", []),
    ],
)
def test_product_phrases(lexicon, text, items):
    assert phrases.items(text, lexicon) == items


def test_a_needs_word_that_names_a_product_is_no_need(lexicon):
    def named(p):
        return all(phrases.knows(w, lexicon) for w in p.split())

    assert need_of("bbq sauce please", named) is None and need_of("birthday candles", named) is None
    assert need_of("party snacks", named) == "party" and need_of("stuff for a bbq", named) == "barbecue"


def test_typos_are_corrected_conservatively(lexicon):
    assert phrases.corrected("chiken", lexicon) == "chicken"
    assert phrases.corrected("bottled", lexicon) == "bottled"  # a word of its own, not "bottle"
    assert phrases.corrected("beach", lexicon) == "beach"  # not "bleach": a need's word, and not close enough
    assert phrases.corrected("romaine", lexicon) == "romaine"


def test_rules_alone_keep_a_request_for_something_the_shop_lacks(lexicon):
    ev = Evidence("do you sell lawn mowers?", None, [], vocabulary=lexicon.vocabulary, known=lexicon.known)
    u = understand(ev)
    assert u.intent == "product_search" and u.named == ["lawn mowers"]
    assert understand(Evidence("what's the weather like", None, [], vocabulary=lexicon.vocabulary)).named == []
