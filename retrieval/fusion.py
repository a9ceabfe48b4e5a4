"""Score fusion of the two sides of hybrid search, and fitting its one weight on judged queries.

Convex fusion (default): over the union of both sides' candidates, each side's raw scores (BM25; cosine) are
min-max normalised to [0, 1] within that union, then ``alpha * dense + (1 - alpha) * lexical``. A candidate
found by one side only still gets its real score on the other (BM25 of every document comes with the query;
the cosine of any product comes from the vector mirror), so nothing is scored as a guess. When a side has no
spread (no query word known: every BM25 score 0), it contributes 0 and the other side ranks alone.

Learned fusion (``fusion="learned"``) adds two word-match features of each candidate to the two normalised
scores and ranks by a weighted sum of the four (``FEATURES``): min-max BM25, min-max cosine, ``coverage`` (the
fraction of the query's words found in the product, a corrected spelling counting as the word) and ``phrase``
(the fraction of adjacent query word pairs found adjacent in it). BM25 alone ranks a title that repeats one
rare query word above one holding every word; coverage says which titles answer the whole query, and the two
scores order the titles within a coverage level. ``fit_weights`` picks the weights on a simplex grid by the
mean nDCG@k of training queries (the metric itself, not a pointwise loss: on Home Depot a ridge regression on
the same features scored 0.008 lower).

Reciprocal-rank fusion (``fusion="rrf"``, the earlier default) is kept for comparison.

``fit_alpha`` picks alpha on a grid by the mean nDCG@k of training queries; ``DEFAULT_DENSE_ALPHA`` is that fit
for the packaged all-MiniLM-L6-v2 on the training part (70 %, seed 0) of the Home Depot development judgements
(see eval/results/2026-12-01/README.md). A tuned embedder records its own fitted alpha and weights
(``kefu index tune``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_DENSE_ALPHA = 0.35
ALPHA_GRID = tuple(round(a, 2) for a in np.arange(0.0, 1.0001, 0.05))
FEATURES = ("lexical", "dense", "coverage", "phrase")
WEIGHT_STEP = 0.05  # fit_weights' grid: every weight a multiple of this, the weights summing to 1


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scores mapped onto [0, 1] (all zeros when they have no spread)."""
    if len(scores) == 0:
        return scores.astype(np.float64)
    low, high = float(scores.min()), float(scores.max())
    if high - low <= 1e-12:
        return np.zeros(len(scores), dtype=np.float64)
    return (scores.astype(np.float64) - low) / (high - low)


def convex(lexical: np.ndarray, dense: np.ndarray, alpha: float) -> np.ndarray:
    """Fused scores of one query's candidates: raw BM25 and cosine arrays, aligned by candidate."""
    return alpha * minmax(dense) + (1.0 - alpha) * minmax(lexical)


def features(lexical: np.ndarray, dense: np.ndarray, coverage: np.ndarray, phrase: np.ndarray) -> np.ndarray:
    """(n, 4) learned-fusion features of one query's candidates, columns in ``FEATURES`` order."""
    return np.stack([minmax(lexical), minmax(dense), np.asarray(coverage, np.float64),
                     np.asarray(phrase, np.float64)], axis=1)  # fmt: skip


def learned(feature_matrix: np.ndarray, weights: Mapping[str, float]) -> np.ndarray:
    """Fused scores: the weighted sum of the candidates' features (``weights`` by feature name)."""
    return feature_matrix @ np.array([float(weights.get(name, 0.0)) for name in FEATURES])


def rrf(lexical_rank: dict[int, int], dense_rank: dict[int, int], lexical_weight: float, dense_weight: float,
        rrf_k: int) -> dict[int, float]:  # fmt: skip
    """Weighted reciprocal-rank fusion: row -> sum over sides of weight / (rrf_k + rank)."""
    scores: dict[int, float] = {}
    for row, r in lexical_rank.items():
        scores[row] = lexical_weight / (rrf_k + r)
    for row, r in dense_rank.items():
        scores[row] = scores.get(row, 0.0) + dense_weight / (rrf_k + r)
    return scores


@dataclass(frozen=True)
class Candidates:
    """One judged query's fusion inputs: candidate gains and raw scores on both sides, aligned."""

    gains: np.ndarray  # (n,) judged gain of each candidate (0 when unjudged)
    lexical: np.ndarray  # (n,) BM25
    dense: np.ndarray  # (n,) cosine
    ideal_dcg: float  # over all the query's judgements, not only the candidates
    coverage: np.ndarray | None = None  # (n,) fraction of query words in the product (learned fusion only)
    phrase: np.ndarray | None = None  # (n,) fraction of adjacent query word pairs adjacent in it (same)

    def features(self) -> np.ndarray:
        n = len(self.gains)
        zeros = np.zeros(n)
        return features(self.lexical, self.dense, zeros if self.coverage is None else self.coverage,
                        zeros if self.phrase is None else self.phrase)  # fmt: skip


def ideal_dcg(gains: Sequence[float], k: int) -> float:
    best = sorted((g for g in gains if g > 0), reverse=True)[:k]
    return sum(g / math.log2(i + 2) for i, g in enumerate(best))


def ndcg_of(order: np.ndarray, cand: Candidates, k: int) -> float:
    if cand.ideal_dcg <= 0:
        return 0.0
    top = cand.gains[order[:k]]
    return float((top / np.log2(np.arange(2, len(top) + 2))).sum() / cand.ideal_dcg)


def fit_alpha(queries: Sequence[Candidates], k: int = 10, grid: Sequence[float] = ALPHA_GRID) -> dict:
    """The grid alpha with the best mean nDCG@k over ``queries`` (ties: the smaller alpha), and the curve."""
    if not queries:
        raise ValueError("fit_alpha needs at least one judged query.")
    curve = {}
    for alpha in grid:
        total = 0.0
        for cand in queries:
            fused = convex(cand.lexical, cand.dense, alpha)
            total += ndcg_of(np.argsort(-fused, kind="stable"), cand, k)
        curve[float(alpha)] = round(total / len(queries), 4)
    best = max(curve, key=lambda a: (curve[a], -a))
    return {"alpha": best, f"train_ndcg@{k}": curve[best], "queries": len(queries), "curve": curve}


def simplex_grid(dims: int, step: float) -> np.ndarray:
    """Every weight vector of ``dims`` non-negative multiples of ``step`` summing to 1, as rows."""
    units = round(1 / step)
    rows = [
        np.diff([-1, *bars, units + dims - 1]) - 1  # stars and bars: the bars' places split ``units`` steps
        for bars in itertools.combinations(range(units + dims - 1), dims - 1)
    ]
    return np.array(rows, dtype=np.float64) / units


def fit_weights(queries: Sequence[Candidates], k: int = 10, step: float = WEIGHT_STEP) -> dict:
    """The learned-fusion weights (on the simplex grid of ``step``) with the best mean nDCG@k over ``queries``;
    ties go to the most weight on the earlier features (BM25 alone is tried first). Candidates are padded into
    one (queries, most candidates, features) array so that each grid point costs one matrix product and a sort."""
    if not queries:
        raise ValueError("fit_weights needs at least one judged query.")
    width = max(1, max(len(c.gains) for c in queries))
    feats = np.zeros((len(queries), width, len(FEATURES)))
    gains = np.zeros((len(queries), width))
    valid = np.zeros((len(queries), width), dtype=bool)
    for i, cand in enumerate(queries):
        n = len(cand.gains)
        feats[i, :n], gains[i, :n], valid[i, :n] = cand.features(), cand.gains, True
    ideal = np.array([c.ideal_dcg for c in queries])
    discount = 1 / np.log2(np.arange(2, k + 2))
    top = min(k, width)
    best, best_score = None, -1.0
    for weights in simplex_grid(len(FEATURES), step)[::-1]:  # descending: [1, 0, 0, 0] first
        scores = np.where(valid, feats @ weights, -np.inf)
        # top-k by score, ties broken by candidate position (as the stable sort of ndcg_of does)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
        dcg = (np.take_along_axis(gains, order, axis=1) * discount[:top]).sum(axis=1)
        score = float(np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1), 0.0).mean())
        if score > best_score + 1e-12:
            best, best_score = weights, score
    return {
        "weights": {name: round(float(w), 4) for name, w in zip(FEATURES, best, strict=True)},
        f"train_ndcg@{k}": round(best_score, 4),
        "queries": len(queries),
        "grid_step": step,
    }
