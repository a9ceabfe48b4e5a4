"""Candidates and their features: every item a customer bought, plus each explore signal's top items, with one
feature row per (customer, candidate) for the blend (``recommend/blend.py``).

Customers are taken in blocks; in a block every signal is a dense block x items array, so a candidate's
features are gathered with fancy indexing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans

from recommend.baskets import Baskets
from recommend.signals import (
    ItemStats,
    Personal,
    SignalConfig,
    basket_matrix,
    co_purchase,
    fit_als,
    follow_on,
    recent_weights,
    segment_popularity,
)

BLOCK = 1024  # customers per block


@dataclass(frozen=True)
class CandidateConfig:
    history: int = 60  # most-decayed-frequency items a customer bought
    co: int = 30  # per explore signal
    follow: int = 30
    als: int = 30
    segment: int = 20
    popular: int = 20
    content: int = 20


@dataclass
class Signals:
    """Everything fitted on one ``Baskets``; ``segments`` maps a segment kind (rfm, cluster, frequency) to each
    customer's label, ``segment_names`` to the label names."""

    baskets: Baskets
    personal: Personal
    items: ItemStats
    weights: sparse.csr_matrix  # customers x items, row-normalised decayed frequency
    co: sparse.csr_matrix
    follow: sparse.csr_matrix
    user_factors: np.ndarray
    item_factors: np.ndarray
    segments: dict[str, np.ndarray] = field(default_factory=dict)
    segment_pop: dict[str, np.ndarray] = field(default_factory=dict)
    segment_names: dict[str, list[str]] = field(default_factory=dict)
    content: np.ndarray | None = None  # items x d, unit vectors (the catalogue's text), or None

    @classmethod
    def fit(cls, b: Baskets, cfg: SignalConfig, segments: dict[str, tuple[np.ndarray, list[str]]] | None = None,
            content: np.ndarray | None = None, clusters: int = 8) -> Signals:  # fmt: skip
        """Fit the signals; ``segments`` (kind -> per-customer label, label names) adds segment popularity, and
        a behavioural cluster (k-means on the ALS customer factors) is always added unless ``clusters`` is 0."""
        p = Personal.fit(b, cfg.half_life)
        bm, b_users, b_times = basket_matrix(b)
        uf, itf = fit_als(p, cfg)
        seg = dict(segments or {})
        if clusters:
            active = p.n_baskets > 0
            norm = uf / np.maximum(np.linalg.norm(uf, axis=1, keepdims=True), 1e-9)
            km = KMeans(clusters, n_init=1, random_state=7).fit(norm[active])
            labels = np.zeros(b.n_users, dtype=np.int64)
            labels[active] = km.labels_
            seg["cluster"] = (labels, [f"cluster {c}" for c in range(clusters)])
        s = cls(b, p, ItemStats.fit(p, b.n_items), recent_weights(p), co_purchase(bm, cfg.neighbours),
                follow_on(bm, b_users, b_times, cfg.neighbours), uf, itf, content=content)  # fmt: skip
        for kind, (labels, names) in seg.items():
            s.segments[kind] = labels
            s.segment_names[kind] = names
            s.segment_pop[kind] = segment_popularity(p, labels, len(names))
        return s

    def without_segments(self) -> Signals:
        """The same signals with every segment signal left out (the ablation)."""
        return Signals(self.baskets, self.personal, self.items, self.weights, self.co, self.follow,
                       self.user_factors, self.item_factors, content=self.content)  # fmt: skip


FEATURES = [
    "bought", "count", "count_share", "decayed", "age", "own_gap", "age_over_gap", "cycle", "age_over_cycle",
    "buyers", "repeat_share", "co", "follow", "als", "popular_rank", "content",
    "n_baskets", "basket_size", "explore_rate", "span",
]  # fmt: skip
SEGMENT_FEATURES = ["segment_share", "segment_lift"]  # per segment kind, in sorted order


def feature_names(s: Signals) -> list[str]:
    return FEATURES + [f"{k}_{f}" for k in sorted(s.segments) for f in SEGMENT_FEATURES]


def _row_top(m: sparse.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each row's ``n`` largest positive entries."""
    rows, cols = [], []
    for row in range(m.shape[0]):
        lo, hi = m.indptr[row], m.indptr[row + 1]
        data = m.data[lo:hi]
        keep = np.arange(lo, hi) if hi - lo <= n else lo + np.argpartition(-data, n)[:n]
        keep = keep[m.data[keep] > 0]
        rows.append(np.full(len(keep), row))
        cols.append(m.indices[keep])
    return np.concatenate(rows), np.concatenate(cols)


def _fixed(items: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The same candidate ``items`` for every row."""
    return np.repeat(np.arange(n_rows), len(items)), np.tile(items, n_rows)


@dataclass
class Block:
    users: np.ndarray  # customer index of each candidate row
    items: np.ndarray
    x: np.ndarray  # rows x features


def blocks(s: Signals, users: np.ndarray, cfg: CandidateConfig) -> Iterator[Block]:
    """Candidate rows for these customers, a block at a time."""
    from implicit.cpu.topk import topk  # deferred with the rest of implicit

    p, it = s.personal, s.items
    n_items = s.baskets.n_items
    log_buyers = np.log1p(it.buyers)
    pop_rank = np.empty(n_items)
    pop_rank[np.argsort(-it.recent_buyers, kind="stable")] = np.arange(n_items)
    popular = np.argsort(-it.recent_buyers, kind="stable")[: cfg.popular]
    seg_top = {k: np.argsort(-pop, axis=1, kind="stable")[:, : cfg.segment] for k, pop in s.segment_pop.items()}
    base = it.buyers / max(1, s.baskets.n_users)
    for start in range(0, len(users), BLOCK):
        u = users[start : start + BLOCK]
        dec, w = p.decayed[u], s.weights[u]
        co, fo = (w @ s.co).tocsr(), (w @ s.follow).tocsr()
        co.sort_indices()  # (the top-n below breaks ties by position: sorted, as before)
        fo.sort_indices()
        found = [_row_top(dec, cfg.history), _row_top(co, cfg.co), _row_top(fo, cfg.follow),
                 _fixed(popular, len(u))]  # fmt: skip
        als_items, _ = topk(s.item_factors, s.user_factors[u], cfg.als, num_threads=1)
        found.append((np.repeat(np.arange(len(u)), cfg.als), als_items.ravel()))
        for kind in sorted(s.segments):
            top = seg_top[kind][s.segments[kind][u]]  # block x n
            found.append((np.repeat(np.arange(len(u)), top.shape[1]), top.ravel()))
        if s.content is not None:
            profile = w @ s.content
            profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-9)
            content_items, _ = topk(s.content, profile.astype(np.float32), cfg.content, num_threads=1)
            found.append((np.repeat(np.arange(len(u)), cfg.content), content_items.ravel()))
        keys = np.unique(np.concatenate([r.astype(np.int64) * n_items + c for r, c in found if len(r)]))
        r, c = keys // n_items, keys % n_items
        cnt, age, gap, decayed, co_at, fo_at = (_gather(m, keys, n_items) for m in (p.count[u], p.age[u], p.gap[u],
                                                                                   dec, co, fo))  # fmt: skip
        bought = cnt > 0
        nb = p.n_baskets[u][r]
        cycle = it.cycle[c]
        als = np.einsum("ij,ij->i", s.user_factors[u[r]], s.item_factors[c])
        profile = (w @ s.content)[r] if s.content is not None else None
        cos = np.zeros(len(r)) if profile is None else np.einsum("ij,ij->i", profile, s.content[c])
        cols = [
            bought, cnt, cnt / np.maximum(nb, 1), decayed, np.where(bought, age - 1, -1),
            np.where(gap > 1, gap - 1, -1), np.where(gap > 1, (age - 1) / np.maximum(gap - 1, 1e-9), -1),
            cycle, np.where(bought & (cycle > 0), (age - 1) / np.maximum(cycle, 1e-9), -1),
            log_buyers[c], it.repeat_share[c], co_at, fo_at, als, np.log1p(pop_rank[c]),
            cos, nb, p.basket_size[u][r], p.explore_rate[u][r], p.span[u][r],
        ]  # fmt: skip
        for kind in sorted(s.segments):
            share = s.segment_pop[kind][s.segments[kind][u[r]], c]
            cols += [share, share / np.maximum(base[c], 1e-9)]
        yield Block(u[r], c, np.column_stack(cols).astype(np.float32))


def _gather(m: sparse.csr_matrix, keys: np.ndarray, n_items: int) -> np.ndarray:
    """m[r, c] for sorted candidate ``keys`` (r * n_items + c), 0 where m has no entry: one binary search of the
    keys among m's own entries (sorted the same way), far faster than scipy's element-wise indexing."""
    if not m.has_sorted_indices:
        m = m.sorted_indices()
    if m.nnz == 0:
        return np.zeros(len(keys))
    own = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n_items + m.indices
    pos = np.minimum(np.searchsorted(own, keys), len(own) - 1)
    return np.where(own[pos] == keys, m.data[pos], 0).astype(np.float64)


def co_source(s: Signals, user: int, item: int) -> int | None:
    """The customer's bought item that pulls ``item`` in most (weight x co-purchase rate), for a reason."""
    w = s.weights[user]
    if w.nnz == 0:
        return None
    rate = np.asarray(s.co[w.indices, item].todense()).ravel() * w.data
    return int(w.indices[int(rate.argmax())]) if rate.max() > 0 else None
