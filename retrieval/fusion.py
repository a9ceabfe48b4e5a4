"""Score fusion of the two sides of hybrid search, and fitting its one weight on judged queries.

Convex fusion (default): over the union of both sides' candidates, each side's raw scores (BM25; cosine) are
min-max normalised to [0, 1] within that union, then ``alpha * dense + (1 - alpha) * lexical``. A candidate
found by one side only still gets its real score on the other (BM25 of every document comes with the query;
the cosine of any product comes from the vector mirror), so nothing is scored as a guess. When a side has no
spread (no query word known: every BM25 score 0), it contributes 0 and the other side ranks alone.

Reciprocal-rank fusion (``fusion="rrf"``, the earlier default) is kept for comparison.

``fit_alpha`` picks alpha on a grid by the mean nDCG@k of training queries; ``DEFAULT_DENSE_ALPHA`` is that fit
for the packaged all-MiniLM-L6-v2 on the training part (70 %, seed 0) of the Home Depot development judgements
(see eval/results/2026-12-01/README.md). A tuned embedder records its own fitted alpha (``kefu index tune``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_DENSE_ALPHA = 0.35
ALPHA_GRID = tuple(round(a, 2) for a in np.arange(0.0, 1.0001, 0.05))


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
