"""Product phrases ("items"): what a shopper's turn asks to find, one phrase per product, as they would type it
into a search box ("I need milk, eggs and a loaf of bread" -> ["milk", "eggs", "bread"]).

A phrase leaves out what does not name the product (word lists in ``words.toml``, brands in ``brands.toml``):

- request words, filler, pleasantries, prices and budget words ("do you carry …", "no more than ten bucks");
- quantities, measures and packages ("a dozen eggs", "skim milk, a gallon", "a bottle of ketchup", "the big
  bottle"), while package words that name the product stay ("trash bags", "tea bags");
- quality words ("fresh", "real") and purpose phrases ("charcoal for the grill", "salsa to go with them");
- brand names ("Jif peanut butter" -> "peanut butter"; "any Tide?" -> "laundry detergent");
- clauses that set the scene beside a request ("my son has a cold, need cough drops").

A word the catalogue does not know is corrected to a catalogue word when one is close ("chiken" -> "chicken",
``rapidfuzz``). Lists split on commas, new lines, "+" and "/" always, and on "and", "&", "n", "vs" only where
both sides name products and the two together are no product of their own ("mac and cheese" stays whole: the
catalogue's names holding "and", matched through its shorthand, and a curated list).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from functools import cache
from importlib import resources

from rapidfuzz import fuzz, process

from assistant.understanding import acts
from assistant.understanding.catalogue import Lexicon
from assistant.understanding.rules import PRICE_PATTERNS, after_switch
from retrieval.lexical import is_shorthand

TOKEN = re.compile(r"\d+(?:\.\d+)?%|[a-z0-9](?:[a-z0-9'&-]*[a-z0-9'])?")
_CONTRACTION = re.compile(r"(?:'s|'re|'ll|'m|'d|'ve|n't|')$")
_HARD = re.compile(r"\s*(?:[,;:.!?\n+/()]|^\s*[-*•]\s+|\band also\b|\bas well as\b|\bplus\b)\s*", re.I | re.M)
_SOFT = re.compile(r"\s+(?:and|&|n|vs\.?|versus)\s+", re.I)
_LEAD = re.compile(
    r"^\W*(?:(?:hi|hello|hey|hiya|ok|okay|so|and|also|but|please|um|hmm|well|oh|yes|yeah|great|thanks|cool|"
    r"good (?:morning|afternoon|evening))\b\W*)*"
    r"(?:(?:i|we)\s*(?:'d|'ll|would|will)?\s*(?:really\s+|also\s+|still\s+|just\s+)?(?:need|want|like|love|wanna|gotta)"
    r"(?:\s+to\s+(?:buy|get|order|find|try|have|grab|pick\s+up|stock\s+up\s+on))?"
    r"|(?:i|we)\s*(?:'m|'re|am|are)\s+(?:after|looking\s+for|shopping\s+for|searching\s+for|trying\s+to\s+(?:find|get)|"
    r"(?:all\s+)?out\s+of|in\s+need\s+of|running\s+(?:low\s+on|out\s+of))"
    r"|(?:i|we)\s+(?:ran|run|have\s+run)\s+out\s+of"
    r"|(?:can|could|would|will)\s+(?:you|u|i|we)\s+(?:please\s+)?(?:get|find|have|add|show|give|grab|recommend|"
    r"suggest|buy|order)(?:\s+(?:me|us))?"
    r"|(?:do|does|did)\s+(?:you|u|y'?all|the\s+(?:shop|store))\s+(?:guys\s+)?(?:have|sell|carry|stock|got|offer)"
    r"|have\s+you\s+got|got\s+any|you\s+got|where\s+(?:can|do)\s+i\s+(?:find|get|buy)"
    r"|(?:get|find|show|give|bring|grab)\s+(?:me|us)|add|need|want|looking\s+for|searching\s+for|shopping\s+for)\b",
    re.I,
)
# a clause about the shopper's situation, beside the request: "my son has a cold", "it's a gift", "i live alone"
_SCENE = re.compile(
    r"^\W*(?:my|our|his|her|their|i|im|i'm|i've|i'd|we|we're|we've|he|she|he's|she's|they|they're|it|it's|its|"
    r"there|there's|that's|those|these|this\s+is|money's)\b",
    re.I,
)
# what a product is for, cut from the phrase: "charcoal for the grill", "salsa to go with them", "tuna in water"
_PURPOSE = re.compile(
    r"(?:^|\s+)(?:for|to\s+go\s+with|(?:that\s+)?(?:go|goes)\s+(?:well\s+)?with|pairs?\s+(?:well\s+)?with|"
    r"(?:suggest|recommend|serve|eat)\s+with|in\s+(?:the|a|an|my|our|your|water|oil|brine|syrup|juice))\b.*$",
    re.I,
)
_LABEL = re.compile(r"^\W*(?:[a-z']+\s+){0,3}[a-z']+\s*:(?!\d)", re.I)  # "shopping list:", "grocery run:"
_JOIN = "and-and"  # "mac and cheese": the "and" kept through the word filter


@cache
def brands() -> dict[str, str]:
    """Brand name (lower case) -> the kind of product it stands for (``brands.toml``)."""
    raw = tomllib.loads(resources.files("assistant.understanding").joinpath("brands.toml").read_text())
    return dict(raw["brand"])


@cache
def _brand_pattern() -> re.Pattern[str]:
    names = sorted(brands(), key=len, reverse=True)
    return re.compile(r"(?<![\w'])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w'])", re.I)


@cache
def _lists() -> dict[str, frozenset[str]]:
    w = acts.words()
    dropped = {*w["filler"], *w["chatter"], *w["asking"], *w["quality"], *w["prices"], *w["units"]}
    return {
        "dropped": frozenset(dropped),
        "units": frozenset(w["units"]),
        "counted": frozenset(w["counted"]),
        "containers": frozenset(w["containers"]),
        "sizes": frozenset(w["package_sizes"]),
        "compounds": frozenset(c.replace("_", " ") for c in w["compounds"]),
        "alone": frozenset(w["alone"]),
        "never_corrected": frozenset(dropped)
        | {t for need in acts.needs().values() for p in need["words"] for t in p.split()},
    }


def _base(token: str) -> str:
    return _CONTRACTION.sub("", token)


def _is_number(token: str) -> bool:
    return token[0].isdigit() and not token.endswith("%")


@cache
def _catalogue_words(lex: Lexicon) -> frozenset[str]:
    return lex.known | lex.vocabulary


def knows(word: str, lex: Lexicon) -> bool:
    """The catalogue has the word (or its singular / plural) in a product's title, category or type."""
    variants = {word, word + "s", word + "es", word.removesuffix("s"), word.removesuffix("es")}
    return bool(variants & _catalogue_words(lex))


@cache
def _candidates(lex: Lexicon) -> dict[str, list[str]]:
    by_initial: dict[str, list[str]] = {}
    for word in sorted(_catalogue_words(lex)):
        if len(word) >= 4 and word.isalpha():
            by_initial.setdefault(word[0], []).append(word)
    return by_initial


TYPO_MIN_RATIO = 92  # rapidfuzz ratio: "chiken" / "chicken" 92.3; not "beach" / "bleach" 90.9, "romaine" / "romano" 77
TYPO_MIN_LENGTH = 5


def corrected(word: str, lex: Lexicon) -> str:
    """The catalogue word a misspelt word stands for ("spagetti" -> "spaghetti"), or the word itself: only words
    the catalogue does not know, five letters or more, same first letter, a close match; never a word's own stem
    or derivation ("creamy" is not "cream", "bottled" is not "bottle")."""
    if len(word) < TYPO_MIN_LENGTH or not word.isalpha() or knows(word, lex) or word in _lists()["never_corrected"]:
        return word
    found = process.extractOne(word, _candidates(lex).get(word[0], []), scorer=fuzz.ratio,
                               score_cutoff=TYPO_MIN_RATIO)  # fmt: skip
    if found is None or word.startswith(found[0]) or (found[0].startswith(word) and len(found[0]) > len(word) + 1):
        return word  # "creamy" is "cream" + y; "choc" shorthand for "chocolate": no typo either
    return found[0]


def phrase(text: str, lex: Lexicon = Lexicon()) -> str:
    """One product phrase from a piece of a message: its product words only ("a bottle of ketchup" -> "ketchup",
    "Jif peanut butter" -> "peanut butter", "chiken breast" -> "chicken breast")."""
    low = text.lower()
    stands_for = None
    if m := _brand_pattern().search(low):
        stands_for = brands()[m.group(0).lower()]
        low = _brand_pattern().sub(" ", low)
    lists = _lists()
    tokens = TOKEN.findall(low)
    kept: list[str] = []
    drop_next_measure = False  # after a number or a measure: "12 roll pack", "4 lb bag"
    for i, token in enumerate(tokens):
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        before = tokens[i - 1] if i else ""
        if token == _JOIN:
            if kept and after:
                kept.append("and")
            continue
        if _is_number(token) or token in lists["units"] or (drop_next_measure and token in lists["counted"]):
            drop_next_measure = True
            continue
        if token in lists["containers"] and (
            after == "of"
            or not before
            or drop_next_measure
            or before in lists["sizes"]
            or _base(before) in lists["dropped"]
        ):
            drop_next_measure = True  # "a bottle of ketchup", "the big bottle", "4 lb bag"; not "trash bags"
            continue
        drop_next_measure = False
        if token in lists["sizes"] and (after in lists["containers"] or after in lists["units"]):
            continue  # "the squeeze bottle", "a jumbo bag"
        if token in ("in", "of") and kept and after and not _is_number(after) and _base(after) not in lists["dropped"]:
            kept.append(token)  # "plug in air freshener", "cream of mushroom soup"
            continue
        if token in lists["dropped"] or _base(token) in lists["dropped"]:
            continue
        word = corrected(_base(token) if "'" in token else token, lex)
        if word.removesuffix("s") in {k.removesuffix("s") for k in kept}:
            continue  # "cat litter for my two cats": a word once
        kept.append(word)
    while kept and kept[-1] in ("and", "in", "of"):
        kept.pop()
    if all(w in lists["alone"] or w.endswith("%") for w in kept):
        kept = []  # "all under $3 each", "what's 15% of 80?": no product on its own
    words = " ".join(kept)
    if stands_for and (not words or set(words.split()) <= set(stands_for.split())):
        return stands_for  # "any Tide detergent?" -> "laundry detergent"
    return words[:200]


def names_product(text: str, lex: Lexicon) -> bool:
    """The phrase holds a word of the catalogue's products, or a brand."""
    p = phrase(text, lex)
    said = [w for w in p.split() if w not in ("and", "in", "of")]
    return bool(said) and (any(knows(w, lex) for w in said) or bool(_brand_pattern().search(text.lower())))


def _compound_pairs(lex: Lexicon) -> set[tuple[str, str]]:
    pairs = set()
    for name in (*lex.compounds, *_lists()["compounds"]):
        left, _, right = name.partition(" and ")
        if left and right:
            pairs.add((left.split()[-1], right.split()[0]))
    return pairs


_pairs = cache(_compound_pairs)


def _alike(said: str, name: str) -> bool:
    said, name = said.removesuffix("s"), name.removesuffix("s")
    return said == name or is_shorthand(name, said)


def is_compound(left: str, right: str, lex: Lexicon) -> bool:
    """ "mac" + "cheese": a product whose name holds "and" (the catalogue's "MAC AND CHS", or the curated list)."""
    a, b = (left.split() or [""])[-1], (right.split() or [""])[0]
    return bool(a and b) and any(_alike(a, x) and _alike(b, y) for x, y in _pairs(lex))


def _split(segment: str, lex: Lexicon, carries: Callable[[str], bool], listed: bool = False) -> list[str]:
    """A segment's pieces on "and" / "&" / "n" / "vs": split where both sides name products and the two are no one
    product; else joined back with "and" kept ("mac and cheese"). In a list (``listed``: "milk, eggs and a tv")
    one side naming a product is enough."""
    pieces = _SOFT.split(segment)
    out = [pieces[0]]
    for piece in pieces[1:]:
        left = out[-1]
        named = [names_product(p, lex) or (bool(phrase(p, lex)) and carries(phrase(p, lex))) for p in (left, piece)]
        enough = all(named) or (listed and any(named) and all(phrase(p, lex) for p in (left, piece)))
        if enough and not is_compound(phrase(left, lex), phrase(piece, lex), lex):
            out.append(piece)
        else:
            out[-1] = f"{left} {_JOIN} {piece}"
    return out


def _cut_purpose(segment: str, lex: Lexicon) -> str:
    """ "charcoal for the grill" -> "charcoal", "something for a headache" -> "": cut what a product is for."""
    if m := _PURPOSE.search(segment):
        return segment[: m.start()]
    return segment


def _never(_: str) -> bool:
    return False


def strip_prices(text: str) -> str:
    for pattern in PRICE_PATTERNS:
        text = pattern.sub(" ", text)
    return text


def _plurals(words: str, lex: Lexicon) -> list[str]:
    """ "apples bananas" -> ["apples", "bananas"]: plural words side by side, one a catalogue word, are items
    ("green beans", "dish soap", "peanut butter" stay whole)."""
    parts = words.split()
    if (
        len(parts) > 1
        and all(w.endswith("s") and len(w) > 3 for w in parts)
        and any(w in lex.vocabulary or w[:-1] in lex.vocabulary for w in parts)
    ):
        return parts
    return [words]


def items(text: str, lex: Lexicon = Lexicon(), carries: Callable[[str], bool] = _never) -> list[str]:
    """The product phrases of a message, in order, each once: one for one product, several for a list; [] when
    it names none. ``carries``: the catalogue has a match for these words (splits a list of products the
    catalogue's words do not name)."""
    text = _LABEL.sub("", strip_prices(after_switch(text)), count=1)  # "grocery run: …"
    segments = [s for s in _HARD.split(text) if s and s.strip()]
    leads = [_LEAD.sub("", s, count=1).strip() for s in segments]
    listed = len(leads) > 1
    found: list[tuple[bool, str]] = []  # (sets the scene, phrase)
    for segment, lead in zip(segments, leads, strict=True):
        scene = listed and lead == segment.strip() and bool(_SCENE.search(lead) or acts.CONTEXT.search(lead))
        for piece in _split(_cut_purpose(lead, lex), lex, carries, listed):
            found += [(scene, p) for p in _plurals(phrase(piece, lex), lex) if p]
    if any(not scene for scene, _ in found):  # "my son has a cold, need cough drops": the scene is no product
        found = [(scene, p) for scene, p in found if not scene]
    return list(dict.fromkeys(p for _, p in found))[:8]
