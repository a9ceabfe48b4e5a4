"""Which language is the shopper writing in? Enough to tell the small English model's limits honestly.

No model download and no guessing from a few letters: a message is "en" unless most of its letters are in a
non-Latin script (Chinese, Japanese, Korean, Cyrillic, Arabic, Greek, Hebrew, Thai, Devanagari), or it is mostly
the common function words of Spanish, French, German, Italian or Portuguese. Short or mixed messages stay "en"
(the shop's product names and numbers are language-neutral).
"""

from __future__ import annotations

import re
import unicodedata

SCRIPTS = {"CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko", "CYRILLIC": "ru", "ARABIC": "ar",
           "GREEK": "el", "HEBREW": "he", "THAI": "th", "DEVANAGARI": "hi"}  # fmt: skip
FUNCTION_WORDS = {
    "es": "el la los las de del que y en un una por para con es quiero busco tienes tienen hay algo más menos "
    "barato barata dónde cómo precio",
    "fr": "le la les des du de et en un une pour avec est je veux cherche avez vous moins cher où comment prix",
    "de": "der die das den dem und ist ich ein eine einen für mit haben sie suche möchte billig unter wo wie preis",
    "it": "il lo la gli le di del che e un una per con è voglio cerco avete meno economico dove come prezzo",
    "pt": "o os as do da dos das que e em um uma por para com é quero procuro vocês tem menos barato onde preço",
}
_WORDS = {lang: frozenset(words.split()) for lang, words in FUNCTION_WORDS.items()}
_ENGLISH = frozenset("the a an and of to for with is i you we it in on my me what do have need want looking "
                     "under cheap some any please can".split())  # fmt: skip
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def _script(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    return next((lang for key, lang in SCRIPTS.items() if name.startswith(key)), None)


def detect(text: str) -> str:
    """A two-letter language code; "en" unless the evidence says otherwise."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    scripts = [s for s in map(_script, letters) if s]
    if len(scripts) >= 0.5 * len(letters):
        return max(set(scripts), key=scripts.count)
    words = [w.lower() for w in _TOKEN.findall(text)]
    if len(words) < 3:
        return "en"
    english = sum(w in _ENGLISH for w in words)
    best, hits = max(((lang, sum(w in vocab for w in words)) for lang, vocab in _WORDS.items()), key=lambda t: t[1])
    return best if hits >= max(2, 0.3 * len(words)) and hits > 2 * english else "en"
