"""The published baselines, on the same ``Baskets``: G-TopFreq (the most frequent items overall), P-TopFreq (the
customer's own most frequent items), GP-TopFreq (P-TopFreq padded with G-TopFreq), and an ``implicit`` ALS model
(its top items, bought ones included)."""

from __future__ import annotations

import numpy as np

from recommend.baskets import Baskets
from recommend.signals import Personal, SignalConfig, fit_als

Ranking = dict[str, list[str]]


def _global_order(b: Baskets) -> np.ndarray:
    per_basket = b.lines.drop_duplicates(["basket", "item"])
    counts = np.bincount(per_basket["item"], minlength=b.n_items)
    return np.argsort(-counts, kind="stable")


def g_topfreq(b: Baskets, users: list[str], k: int) -> Ranking:
    top = [b.items[i] for i in _global_order(b)[:k]]
    return {u: list(top) for u in users}


def p_topfreq(b: Baskets, users: list[str], k: int, pad: bool = False) -> Ranking:
    """Items by how many of the customer's baskets hold them (ties: the more popular item first)."""
    order = _global_order(b)
    rank = np.empty(b.n_items, dtype=np.int64)
    rank[order] = np.arange(b.n_items)
    counts = b.lines.groupby(["user", "item"]).size().reset_index(name="n")
    counts["pop"] = rank[counts["item"].to_numpy()]
    counts = counts.sort_values(["user", "n", "pop"], ascending=[True, False, True])
    own = {b.users[u]: [b.items[i] for i in g["item"].to_numpy()[:k]] for u, g in counts.groupby("user")}
    out: Ranking = {}
    top = [b.items[i] for i in order[: 2 * k]]
    for u in users:
        got = own.get(u, [])
        if pad and len(got) < k:
            got = got + [i for i in top if i not in set(got)][: k - len(got)]
        out[u] = got
    return out


def gp_topfreq(b: Baskets, users: list[str], k: int) -> Ranking:
    return p_topfreq(b, users, k, pad=True)


def als_topk(b: Baskets, users: list[str], k: int, half_life: float) -> Ranking:
    """``implicit`` ALS (the same configuration as the recommender's own CF signal), top ``k`` by score."""
    p = Personal.fit(b, half_life)
    uf, itf = fit_als(p, SignalConfig(half_life=half_life))
    index = b.user_index()
    out: Ranking = {}
    ids = [u for u in users if u in index]
    for start in range(0, len(ids), 2048):
        chunk = ids[start : start + 2048]
        scores = uf[[index[u] for u in chunk]] @ itf.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for row, u in enumerate(chunk):
            best = top[row][np.argsort(-scores[row, top[row]])]
            out[u] = [b.items[i] for i in best]
    fallback = [b.items[i] for i in _global_order(b)[:k]]
    return {u: out.get(u, fallback) for u in users}
