"""Does the catalogue carry what the shopper asked for? Evidence from both sides of the search, and a rule.

A search always returns its best products, even for "a laptop" in a grocery shop. Whether the best is a match
is decided from two pieces of evidence about the top results:

- ``cosine``: the highest cosine between the query's embedding and a top result's (the dense side's view);
- ``coverage``: the largest share of the query's words (the lexical tokens, before spelling correction) that
  one top result's text contains (the lexical side's view).

``MatchRule`` says "carried" when the meaning is close (``cosine >= min_cosine``), or when every word is there
and the meaning is not far (``coverage == 1`` and ``cosine >= min_cosine_all_words``). Its thresholds are
settings, calibrated by ``kefu eval match`` on a development set built from the catalogue's own categories
(carried) and other shops' product types (not carried). Below ``min_cosine`` but at least
``alternatives_cosine``, the results are offered as related alternatives, labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from retrieval.lexical import tokenize

if TYPE_CHECKING:
    from retrieval.hybrid import ProductSearch, SearchResult


@dataclass(frozen=True)
class MatchEvidence:
    cosine: float
    coverage: float


@dataclass(frozen=True)
class MatchRule:
    min_cosine: float = 0.5
    min_cosine_all_words: float = 0.3
    alternatives_cosine: float = 0.42
    top: int = 3  # results looked at

    @classmethod
    def from_settings(cls, settings) -> MatchRule:
        return cls(settings.no_match_min_cosine, settings.no_match_min_cosine_all_words,
                   settings.no_match_alternatives_cosine)  # fmt: skip

    def carried(self, ev: MatchEvidence) -> bool:
        return ev.cosine >= self.min_cosine or (ev.coverage >= 1.0 and ev.cosine >= self.min_cosine_all_words)

    def related(self, ev: MatchEvidence) -> bool:
        """Not a match, but close enough to offer as alternatives."""
        return ev.cosine >= self.alternatives_cosine


def evidence(query_vector: np.ndarray, query: str, result_vectors: list[np.ndarray],
             result_texts: list[str]) -> MatchEvidence:  # fmt: skip
    """The evidence that these results (the top few) match the query."""
    words = set(tokenize(query))
    cosine = max((float(v @ query_vector) for v in result_vectors), default=0.0)
    coverage = max((len(words & set(tokenize(t))) / len(words) for t in result_texts), default=0.0) if words else 0.0
    return MatchEvidence(round(cosine, 4), round(coverage, 4))


def search_evidence(search: ProductSearch, query: str, results: list[SearchResult], top: int = 3) -> MatchEvidence:
    """``evidence`` for a search's own results, from the index's stored vectors and product text. The query's
    vector is the one the search itself used (``ProductSearch.encode`` keeps it): the text is not embedded again."""
    rows = [search.catalog.row_of[r.product_id] for r in results[:top] if r.product_id in search.catalog.row_of]
    vectors = [search.vectors[search.text_row[row]] for row in rows]
    texts = [str(search.catalog.record(row)["text"]) for row in rows]
    return evidence(search.encode(query), query, vectors, texts)
