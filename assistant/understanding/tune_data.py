"""Training examples for ``kefu llm tune``: a shopper turn (with what it follows) -> its reading, as the tuned model
answers it (``TurnReading``).

Three sources, labelled by construction (each example is built from its label, so no label is guessed):
- the shop's own catalogue: product phrases from its product types and categories (cleaned; only names a
  shopper would type), in the phrasings of ``tune_phrases.toml`` with forms, brands, sizes, purposes, budgets,
  lists and typos; follow-ups on a last search (refinements, budgets) and questions about shown cards;
- ``needs.toml``: occasions and problems, by the words shoppers use for them;
- the public training splits: Bitext customer support (after-sales intents) and CLINC150 ``train`` /
  ``oos_train`` (small talk and out-of-scope), mapped as ``intent_map.toml`` maps them.

Lines of a development set (``exclude``, normalized as ``intent_data.normalize``) are never produced.
"""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from assistant.understanding import acts
from assistant.understanding.evidence import NUMBER_WORDS
from assistant.understanding.intent_data import load_bitext, load_clinc, load_intent_map, normalize
from assistant.understanding.reading import TurnContext, TurnReading, turn_messages
from assistant.understanding.schema import AFTER_SALES

SPOKEN = {number: word for word, number in NUMBER_WORDS.items()}  # how a price is spelled out
# words that mark a catalogue name as the shop's own jargon, not a shopper's phrase
_JARGON = {"misc", "other", "all", "frzn", "refrig", "bulk", "pkg", "prep", "non", "ex", "net", "oth", "sw", "gds",
           "flvrd", "unswe", "fd", "brd", "frz", "varieties", "value", "add", "ons", "only", "everyday", "seasonal",
           "general", "accessories", "acc", "supplies", "products", "items", "pse", "mix", "assorted", "in", "store",
           "instore", "premium", "specialty", "over", "under", "lbs", "consumer", "low", "end", "high"}  # fmt: skip


@dataclass(frozen=True)
class Example:
    text: str
    context: TurnContext
    reading: TurnReading
    kind: str

    def messages(self) -> list[dict[str, str]]:
        return [*turn_messages(self.text, self.context), {"role": "assistant", "content": self.reading.answer()}]


def phrases() -> dict[str, Any]:
    return tomllib.loads(resources.files("assistant.understanding").joinpath("tune_phrases.toml").read_text())


def shopper_phrase(name: str) -> str | None:
    """A catalogue name as a shopper would type it ("POTATO CHIPS" -> "potato chips"), None for jargon."""
    text = re.sub(r"\(.*?\)", " ", name.lower())
    text = re.split(r"[/:,&\-]| - ", text)[0]
    words = text.split()
    if not 1 <= len(words) <= 3 or any(not re.fullmatch(r"[a-z]{3,}", w) or w in _JARGON for w in words):
        return None
    if len(words) == 2 and words[0].endswith("s") and not words[1].endswith("s"):  # "grapes white"
        words.reverse()
    return " ".join(words)


FOOD = ("GROCERY", "PRODUCE", "MEAT", "DELI", "PASTRY", "SEAFOOD", "NUTRITION", "FROZEN", "DAIRY", "SALAD", "SPIRITS")


def catalogue_phrases(con) -> tuple[list[str], set[str]]:
    """Product phrases from the store's product types and categories (sellable ones), plus the needs' items; and
    which of them are foods (a form word such as "frozen" or "organic" fits those)."""
    rows = con.execute(
        "SELECT product_type, category, any_value(department) FROM products WHERE price IS NOT NULL "
        "GROUP BY product_type, category HAVING count(*) >= 2"
    ).fetchall()
    found: set[str] = set()
    food: set[str] = set()
    for kind, category, department in rows:
        for name in (kind, category):
            if name and (phrase := shopper_phrase(name)):
                found.add(phrase)
                if department and department.upper().startswith(FOOD):
                    food.add(phrase)
    found |= {item for need in acts.needs().values() for item in need.get("items", [])}
    return sorted(found), food


_KEYS = "qwertyuiopasdfghjklzxcvbnm"


def typo(word: str, rng: random.Random) -> str:
    """One slip of the keyboard: a letter dropped, doubled, swapped with the next or replaced."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice("dsrx")
    if op == "d":
        return word[:i] + word[i + 1 :]
    if op == "x":
        return word[:i] + word[i] + word[i:]
    if op == "s":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice(_KEYS) + word[i + 1 :]


class Generator:
    """Seeded example maker over the shop's phrases."""

    def __init__(self, products: list[str], rng: random.Random, food: set[str] | None = None) -> None:
        self.products, self.rng, self.p, self.food = products, rng, phrases(), food or set()
        self.w = self.p["words"]

    def pick(self, options: list[str]) -> str:
        return self.rng.choice(options)

    def product(self) -> tuple[str, str]:
        """(as written, as labelled): a catalogue phrase, sometimes with a kept form word, a dropped quality,
        size or brand word, or a typo."""
        label = self.pick(self.products)
        r = self.rng.random
        if r() < 0.25 and label in self.food and len(label.split()) < 3:
            label = f"{self.pick(self.w['forms'])} {label}"
        written = label
        if r() < 0.12:
            words = written.split()
            j = self.rng.randrange(len(words))
            words[j] = typo(words[j], self.rng)
            written = " ".join(words)
        roll = r()
        if roll < 0.12:
            written = f"{self.pick(self.w['brands'])} {written}"
        elif roll < 0.24:
            written = f"{self.pick(self.w['quality'])} {written}"
        elif roll < 0.34:
            written = f"{self.pick(self.w['sizes'])} {written}"
        return written, label

    def tail(self) -> str:
        r = self.rng.random()
        if r < 0.1:
            return ", " + self.pick(self.w["size_after"])
        if r < 0.18:
            return " " + self.pick(self.w["purposes"])
        if r < 0.25:
            return " " + self.pick(self.w["thanks"])
        return ""

    def budget(self) -> tuple[str, float | None, float | None]:
        kind = self.rng.choices(["max", "min", "range"], [0.6, 0.25, 0.15])[0]
        p = self.rng.choice([2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 50])
        if self.rng.random() < 0.15:
            p = p - 0.01 if p > 2 else p + 0.5
        a = max(1, int(p // 2))
        text = self.pick(self.p["budget"][kind])
        pw = SPOKEN.get(int(p), str(p)) if float(p).is_integer() else f"{p:g}"
        text = text.replace("{pw}", pw).replace("{p}", f"{p:g}").replace("{a}", str(a))
        lo, hi = {"max": (None, p), "min": (p, None), "range": (a, p)}[kind]
        return text, lo, hi

    def greet(self, text: str) -> str:
        return f"{self.pick(self.w['greetings'])}, {text}" if self.rng.random() < 0.1 else text

    def case(self, text: str) -> str:
        r = self.rng.random()
        return text.capitalize() if r < 0.25 else (text.upper() if r < 0.28 else text)

    # -- kinds ---------------------------------------------------------------------------------------------------
    def search(self) -> Example:
        written, label = self.product()
        text = self.pick(self.p["search"]["one"]).replace("{x}", written) + self.tail()
        lo = hi = None
        if self.rng.random() < 0.3:
            said, lo, hi = self.budget()
            text = f"{text} {said}" if self.rng.random() < 0.8 else f"{said}, {text}"
        reading = TurnReading(intent="product_search", items=[label], budget_min=lo, budget_max=hi)
        return Example(self.case(self.greet(text)), TurnContext(), reading, "search")

    def shopping_list(self) -> Example:
        template = self.pick(self.p["search"]["many"])
        slots = [s for s in ("{x}", "{y}", "{z}", "{w}") if s in template]
        labels: list[str] = []
        for slot in slots:
            written, label = self.product()
            while label in labels:
                written, label = self.product()
            template = template.replace(slot, written, 1)
            labels.append(label)
        reading = TurnReading(intent="product_search", items=labels)
        return Example(self.case(template + self.tail()), TurnContext(), reading, "list")

    def follow_up(self) -> Example:
        """After a search: a refinement, a budget, or a plain constraint (store brand, an exclusion)."""
        last = self.pick(self.products)
        context = TurnContext(last_query=last, cards=self.rng.randint(2, 5))
        roll = self.rng.random()
        if roll < 0.65:
            kind = self.pick(["cheaper", "pricier", "other_brand", "bigger", "smaller", "more"])
            text = self.pick(self.p["refinement"][kind])
            reading = TurnReading(intent="product_search", refinement=kind)
        elif roll < 0.85:
            said, lo, hi = self.budget()
            text = self.pick(self.p["refinement"]["plain_budget"]).replace("{budget}", said)
            reading = TurnReading(intent="product_search", budget_min=lo, budget_max=hi)
        elif roll < 0.93:
            text = self.pick(self.p["refinement"]["plain"]).replace("{f}", self.pick(["diet", "spicy", "salted",
                                                                                       "frozen", "sweet"]))  # fmt: skip
            reading = TurnReading(intent="product_search")
        else:  # a new product after a search is a new search
            written, label = self.product()
            text = self.pick(["and some {x}", "also {x}", "what about {x}?", "now {x} please"]).replace("{x}", written)
            reading = TurnReading(intent="product_search", items=[label])
        return Example(self.case(text), context, reading, "follow_up")

    def ordinal(self, cards: int) -> tuple[str, int]:
        while True:
            word, n = self.rng.choice(self.w["ordinals"])
            if n <= cards:
                return word, n

    def card_question(self) -> Example:
        cards = self.rng.randint(2, 5)
        context = TurnContext(last_query=self.pick(self.products), cards=cards)
        kind = self.pick([k for k in self.p["cards"] if k != "compare"] + ["compare", "compare"])
        text = self.pick(self.p["cards"][kind])
        refs: list[int] = []
        if "{o}" in text:
            word, n = self.ordinal(cards)
            text, refs = text.replace("{o}", word), [n]
            if "{o2}" in text:
                word2, n2 = self.ordinal(cards)
                while n2 == n:
                    word2, n2 = self.ordinal(cards)
                text, refs = text.replace("{o2}", word2), [n, n2]
        elif "first two" in text:
            refs = [1, 2]
        if kind == "compare":
            return Example(self.case(text), context, TurnReading(intent="comparison", product_refs=refs), "cards")
        reading = TurnReading(intent="product_question", card_question=kind, product_refs=refs)
        return Example(self.case(text), context, reading, "cards")

    def compare(self) -> Example:
        (wx, x), (wy, y) = self.product(), self.product()
        text = self.pick(self.p["compare"]["named"]).replace("{x}", wx).replace("{y}", wy)
        return Example(self.case(text), TurnContext(), TurnReading(intent="comparison", items=[x, y]), "compare")

    def recommend(self) -> Example:
        if self.rng.random() < 0.6:
            written, label = self.product()
            text = self.pick(self.p["recommend"]["named"]).replace("{x}", written)
            reading = TurnReading(intent="recommendation", items=[label])
        else:
            text, reading = self.pick(self.p["recommend"]["open"]), TurnReading(intent="recommendation")
        if self.rng.random() < 0.2:
            said, lo, hi = self.budget()
            text, reading = f"{text} {said}", reading.model_copy(update={"budget_min": lo, "budget_max": hi})
        return Example(self.case(text), TurnContext(), reading, "recommend")

    def need(self) -> Example:
        key, need = self.rng.choice(sorted(acts.needs().items()))
        word = self.pick(need.get("words", [key.replace("_", " ")]))
        if self.rng.random() < 0.7:
            text = self.pick(self.p["need"]["ask"]).replace("{n}", word)
            reading = TurnReading(intent="recommendation", need=key)
        else:
            template = self.pick(self.p["need"]["named"]).replace("{n}", word)
            labels = []
            for slot in ("{x}", "{y}"):
                if slot in template:
                    written, label = self.product()
                    template, labels = template.replace(slot, written), [*labels, label]
            text, reading = template, TurnReading(intent="product_search", items=labels, need=key)
        return Example(self.case(text), TurnContext(), reading, "need")

    def history(self) -> Example:
        kind = self.pick(["last_order", "usual", "orders"])
        text = self.pick(self.p["history"][kind])
        return Example(self.case(text), TurnContext(), TurnReading(intent="order_status", history=kind), "history")

    def order(self) -> Example:
        intent = self.pick(sorted(self.p["order"]))
        order_id = str(self.rng.randint(10**7, 10**11))
        text = self.pick(self.p["order"][intent]).replace("{id}", order_id)
        return Example(self.case(text), TurnContext(), TurnReading(intent=intent, order_id=order_id), "order")


MIX: dict[str, float] = {"search": 0.24, "shopping_list": 0.12, "follow_up": 0.14, "card_question": 0.12,
                         "compare": 0.04, "recommend": 0.07, "need": 0.07, "history": 0.03, "order": 0.04}  # fmt: skip
PUBLIC_SHARE = 0.13  # Bitext after-sales, CLINC small talk and out-of-scope


def public_examples(rng: random.Random, n: int) -> list[Example]:
    """Bitext after-sales rows and CLINC150 small-talk / out-of-scope rows (train splits only), even per intent."""
    mapping = load_intent_map()
    bitext, clinc = load_bitext(mapping), load_clinc(mapping)
    rows = [(t, i) for t, i in zip(bitext["text"], bitext["intent"], strict=True) if i in AFTER_SALES]
    clinc = clinc[clinc["split"].isin(["train", "oos_train"])]
    rows += [(t, i) for t, i in zip(clinc["text"], clinc["intent"], strict=True) if i in ("chitchat", "out_of_scope")]
    by_intent: dict[str, list[str]] = {}
    for text, intent in rows:
        by_intent.setdefault(intent, []).append(text)
    weights = {i: (3.0 if i == "out_of_scope" else 1.5 if i == "chitchat" else 1.0) for i in by_intent}
    total = sum(weights.values())
    out: list[Example] = []
    for intent, texts in sorted(by_intent.items()):
        for text in rng.sample(texts, min(len(texts), round(n * weights[intent] / total))):
            out.append(Example(text, TurnContext(), TurnReading(intent=intent), "public"))  # type: ignore[arg-type]
    return out


def build(
    products: list[str], n: int, seed: int = 0, exclude: Iterable[str] = (), food: set[str] | None = None
) -> list[Example]:
    """``n`` examples (shuffled, seeded), none whose message a development set holds."""
    if not products:
        raise ValueError("no product phrases to build examples from")
    rng = random.Random(seed)
    gen = Generator(products, rng, food)
    banned = {normalize(t) for t in exclude}
    makers: dict[str, Callable[[], Example]] = {k: getattr(gen, k) for k in MIX}
    examples = [e for e in public_examples(rng, int(n * PUBLIC_SHARE)) if normalize(e.text) not in banned]
    kinds, weights = list(MIX), list(MIX.values())
    seen = {normalize(e.text) for e in examples}
    while len(examples) < n:
        example = makers[rng.choices(kinds, weights)[0]]()
        key = normalize(example.text) + f"|{example.context}"
        if normalize(example.text) in banned or key in seen:
            continue
        seen.add(key)
        examples.append(example)
    rng.shuffle(examples)
    return examples[:n]
