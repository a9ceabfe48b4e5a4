"""Lexical side: BM25 (``bm25s``) over word tokens of the product text, persisted beside the Chroma data.

Catalogue text is terse shorthand ("PWDR/CRYSTL DRNK MX", "CAN CATFD") and shoppers misspell, so a query word
that is not in the index vocabulary is expanded before scoring:
- a spelling correction: the closest vocabulary words within edit distance 1 (words of 4-6 letters) or 2
  (7+ letters), found with ``rapidfuzz``;
- failing that, a shorthand match (``is_shorthand``) either way: "pwdr" for "powder", "drnk" for "drink",
  "choc" for "chocolate".
Before both, ``shopper_words.toml`` (package data) says what shoppers type for things catalogues write another
way: "cola" stands for "soft drink", and "mac" counts as "macaroni" too.
At most ``MAX_EXPANSIONS`` per word, most frequent first. Tokens: lowercase alphanumeric runs, a trailing plural
"s" stripped, a short English stopword list removed. Doc rows are catalogue rows.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(STOPWORDS_EN) | {"with", "from", "size", "item"}
MAX_EXPANSIONS = 3
MIN_ABBREV_LEN = 3
VOWELS = frozenset("aeiou")


def stem(token: str) -> str:
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    return [stem(t) for t in TOKEN.findall(text.lower()) if t not in STOPWORDS and (len(t) > 1 or t.isdigit())]


@cache
def shopper_words() -> dict[str, dict[str, list[str]]]:
    """``shopper_words.toml`` as {table: {query token: catalogue tokens}}, keys and values tokenized as queries are."""
    data = tomllib.loads((Path(__file__).parent / "shopper_words.toml").read_text(encoding="utf-8"))
    return {
        table: {tokenize(word)[0]: tokenize(words) for word, words in entries.items() if tokenize(word)}
        for table, entries in data.items()
    }


def is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


def is_shorthand(short: str, long: str) -> bool:
    """``short`` abbreviates ``long``: a prefix of 3+ letters ("choc"), or a mostly-consonant skeleton of it with
    3+ consonants ("pwdr" for "powdered", "drnk" for "drink"), same first letter, at least 40% of its length."""
    if len(short) >= len(long) or short[0] != long[0] or len(short) < max(MIN_ABBREV_LEN, 0.4 * len(long)):
        return False
    if long.startswith(short):
        return True
    vowels = sum(ch in VOWELS for ch in short)
    return vowels <= 1 and len(short) - vowels >= 3 and is_subsequence(short, long)


@dataclass
class QueryTerms:
    tokens: list[str]  # what is scored (known words and expansions)
    corrections: dict[str, list[str]] = field(default_factory=dict)  # unknown word -> vocabulary words used
    unknown: list[str] = field(default_factory=list)  # words with no match at all
    words: list[str] = field(default_factory=list)  # the query's tokens in order, as typed (before expansion)

    def alternatives(self) -> list[set[str]]:
        """Per query word, the tokens that count as it in a product: itself and its corrections."""
        return [{word, *self.corrections.get(word, ())} for word in self.words]


def word_matches(alternatives: list[set[str]], text: str) -> tuple[float, float]:
    """(coverage, phrase) of one product text for a query: the fraction of query words found in the text, and
    the fraction of adjacent query word pairs found adjacent in it (0 for a one-word query). ``alternatives``
    comes from ``QueryTerms.alternatives``; stopwords are dropped on both sides before pairing."""
    if not alternatives:
        return 0.0, 0.0
    tokens = tokenize(text)
    present = set(tokens)
    coverage = sum(1 for alts in alternatives if alts & present) / len(alternatives)
    if len(alternatives) < 2:
        return coverage, 0.0
    pairs = set(zip(tokens, tokens[1:], strict=False))
    wanted = list(zip(alternatives, alternatives[1:], strict=False))
    found = sum(1 for first, second in wanted if any((a, b) in pairs for a in first for b in second))
    return coverage, found / len(wanted)


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25, doc_freq: dict[str, int]) -> None:
        self.retriever = retriever
        self.doc_freq = doc_freq
        self.vocab = list(doc_freq)
        self.by_initial: dict[str, list[str]] = defaultdict(list)
        for word in self.vocab:
            self.by_initial[word[0]].append(word)
        self.n_docs = int(retriever.scores["num_docs"])

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        corpus = [tokenize(t) or ["__empty__"] for t in texts]
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
        doc_freq = Counter(tok for doc in corpus for tok in set(doc))
        return cls(retriever, dict(doc_freq))

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.retriever.save(str(tmp))
        (tmp / "doc_freq.json").write_text(json.dumps(self.doc_freq))
        old = path.with_name(path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        retriever = bm25s.BM25.load(str(path))
        doc_freq = json.loads((path / "doc_freq.json").read_text())
        return cls(retriever, doc_freq)

    def expand(self, word: str) -> list[str]:
        """Vocabulary words standing in for an unknown query word: the closest spellings, else shorthand."""
        if len(word) >= 4:
            max_dist = 1 if len(word) <= 6 else 2
            found = process.extract(word, self.vocab, scorer=Levenshtein.distance, score_cutoff=max_dist, limit=20)
            if found:
                best = min(dist for _, dist, _ in found)
                ranked = sorted((m for m, dist, _ in found if dist == best), key=lambda w: -self.doc_freq[w])
                return ranked[:MAX_EXPANSIONS]
        if len(word) < MIN_ABBREV_LEN or word.isdigit():
            return []
        ranked = sorted(
            (cand for cand in self.by_initial.get(word[0], ()) if is_shorthand(cand, word) or is_shorthand(word, cand)),
            key=lambda w: -self.doc_freq[w],
        )
        return ranked[:MAX_EXPANSIONS]

    def query_terms(self, query: str) -> QueryTerms:
        terms = QueryTerms(tokens=[], words=tokenize(query))
        known = shopper_words()
        for word in terms.words:
            if word in self.doc_freq:
                terms.tokens.append(word)
                also = [w for w in known["also"].get(word, ()) if w in self.doc_freq]
                if also:
                    terms.corrections[word] = also
                    terms.tokens.extend(also)
                continue
            expansions = [w for w in known["stand_in"].get(word, ()) if w in self.doc_freq] or self.expand(word)
            if expansions:
                terms.corrections[word] = expansions
                terms.tokens.extend(expansions)
            else:
                terms.unknown.append(word)
        return terms

    def scores(self, terms: QueryTerms, mask: np.ndarray | None = None) -> np.ndarray | None:
        """BM25 score of every doc row (0 outside ``mask``); None when no query word is in the vocabulary."""
        token_ids = self.retriever.get_tokens_ids(terms.tokens)
        if not token_ids:
            return None
        scores = self.retriever.get_scores_from_ids(token_ids)
        return scores if mask is None else np.where(mask, scores, 0.0).astype(scores.dtype)

    def top(self, scores: np.ndarray | None, n: int) -> list[tuple[int, float]]:
        """The n best (row, score) with score > 0, best first (ties: lower row first)."""
        if scores is None or n <= 0:
            return []
        positive = np.flatnonzero(scores > 0)
        if len(positive) > n:
            positive = positive[np.argpartition(-scores[positive], n - 1)[:n]]
        order = positive[np.lexsort((positive, -scores[positive]))]
        return [(int(row), float(scores[row])) for row in order]

    def search(self, terms: QueryTerms, n: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-n (row, score) with score > 0, rows allowed by ``mask`` only."""
        return self.top(self.scores(terms, mask), n)
