"""The signals a recommendation is built from, fitted on one ``Baskets``.

Repeat side (``Personal``): per customer and item, how often, how recently (time-decayed), and when the item is
next due on its own repurchase cycle (the median gap between a customer's purchases of it, over all customers).
Explore side: item-to-item co-purchase (same basket) and follow-on (next basket) rates; an ``implicit`` ALS model;
popularity within the customer's segment and overall; optionally the catalogue's content (embeddings).
Each is a customers x items matrix (sparse, or a dense row block on demand) so candidates and features are
gathered with array operations, never per customer in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

from recommend.baskets import Baskets


@dataclass(frozen=True)
class SignalConfig:
    half_life: float  # of the personal frequency's decay, in the layout's time unit
    factors: int = 64  # ALS
    als_iterations: int = 15
    als_regularization: float = 0.05
    als_alpha: float = 2.0
    neighbours: int = 100  # kept per item in the co-purchase and follow-on matrices


def _csr(rows, cols, vals, shape) -> sparse.csr_matrix:
    m = sparse.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    return m


@dataclass
class Personal:
    """Per (customer, item) the customer bought: counts, decayed frequency, last time, own mean gap."""

    count: sparse.csr_matrix  # baskets with the item
    decayed: sparse.csr_matrix  # sum of 0.5 ** (age / half_life) over those baskets
    age: sparse.csr_matrix  # now - last purchase time, + 1 (so that 0 means "never bought")
    gap: sparse.csr_matrix  # the customer's own mean gap between purchases of the item (count >= 2), + 1
    n_baskets: np.ndarray  # per customer
    basket_size: np.ndarray  # mean items per basket
    explore_rate: np.ndarray  # share of lines (after the first basket) that were new to the customer
    span: np.ndarray  # now - first purchase time

    @classmethod
    def fit(cls, b: Baskets, half_life: float) -> Personal:
        shape = (b.n_users, b.n_items)
        lines = b.lines
        age = b.now - lines["time"].to_numpy()
        g = pd.DataFrame({"user": lines["user"], "item": lines["item"], "age": age,
                          "w": 0.5 ** (age / half_life)})  # fmt: skip
        per = g.groupby(["user", "item"], sort=False).agg(n=("age", "size"), last=("age", "min"),
                                                          first=("age", "max"), w=("w", "sum"))  # fmt: skip
        u, i = per.index.get_level_values(0).to_numpy(), per.index.get_level_values(1).to_numpy()
        n = per["n"].to_numpy(dtype=np.float64)
        gap = np.where(n > 1, (per["first"] - per["last"]).to_numpy() / np.maximum(n - 1, 1), 0.0)
        by_user = lines.groupby("user")
        n_baskets = np.zeros(b.n_users)
        n_baskets[by_user["basket"].nunique().index] = by_user["basket"].nunique().to_numpy()
        size = np.zeros(b.n_users)
        size[by_user.size().index] = by_user.size().to_numpy() / np.maximum(n_baskets[by_user.size().index], 1)
        span = np.zeros(b.n_users)
        span[by_user["time"].min().index] = b.now - by_user["time"].min().to_numpy()
        first_basket = lines.groupby(["user", "item"])["basket"].transform("min")
        user_first = by_user["basket"].transform("min")
        later = lines["basket"] != user_first
        new = (first_basket == lines["basket"]) & later
        rate = np.zeros(b.n_users)
        counts = (
            pd.DataFrame({"user": lines["user"], "new": new, "later": later}).groupby("user")[["new", "later"]].sum()
        )
        rate[counts.index] = counts["new"].to_numpy() / np.maximum(counts["later"].to_numpy(), 1)
        return cls(_csr(u, i, n, shape), _csr(u, i, per["w"].to_numpy(), shape), _csr(u, i, per["last"] + 1, shape),
                   _csr(u, i, gap + 1, shape), n_baskets, size, rate, span)  # fmt: skip


@dataclass
class ItemStats:
    """Per item: buyers, the median repurchase gap (over customer-items bought at least twice) and the share of
    buyers who bought it again."""

    buyers: np.ndarray
    recent_buyers: np.ndarray  # buyers weighted by recency of their last purchase
    cycle: np.ndarray  # 0 where nobody bought it twice
    repeat_share: np.ndarray

    @classmethod
    def fit(cls, p: Personal, n_items: int) -> ItemStats:
        count = p.count.tocoo()
        buyers = np.bincount(count.col, minlength=n_items).astype(np.float64)
        repeaters = np.bincount(count.col, weights=count.data > 1, minlength=n_items)
        gap = p.gap.tocoo()
        multi = gap.data > 1
        df = pd.DataFrame({"item": gap.col[multi], "gap": gap.data[multi] - 1})
        med = df.groupby("item")["gap"].median()
        cycle = np.zeros(n_items)
        cycle[med.index.to_numpy()] = med.to_numpy()
        recent = np.asarray(p.decayed.sum(axis=0)).ravel()  # buyers, each weighted by how recently they bought
        return cls(buyers, recent, cycle, repeaters / np.maximum(buyers, 1))


def basket_matrix(b: Baskets) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Baskets x items (binary), with each basket's customer and time."""
    codes, uniq = pd.factorize(b.lines["basket"], sort=True)
    m = _csr(codes, b.lines["item"].to_numpy(), np.ones(len(codes)), (len(uniq), b.n_items))
    m.data[:] = 1.0
    first = pd.DataFrame({"c": codes, "u": b.lines["user"], "t": b.lines["time"]}).groupby("c").first()
    return m, first["u"].to_numpy(), first["t"].to_numpy()


def prune(m: sparse.csr_matrix, n: int) -> sparse.csr_matrix:
    """Each row's ``n`` largest entries only (indices sorted): the neighbours that matter, and fast products."""
    m = m.tocsr()
    keep = np.zeros(m.nnz, dtype=bool)
    for row in range(m.shape[0]):
        lo, hi = m.indptr[row], m.indptr[row + 1]
        if hi - lo <= n:
            keep[lo:hi] = True
        else:
            keep[lo + np.argpartition(-m.data[lo:hi], n)[:n]] = True
    out = sparse.csr_matrix((np.where(keep, m.data, 0), m.indices, m.indptr), shape=m.shape)
    out.eliminate_zeros()
    out.sort_indices()
    return out


def co_purchase(bm: sparse.csr_matrix, neighbours: int) -> sparse.csr_matrix:
    """P(j in the basket | i in it), items x items, diagonal removed, the top ``neighbours`` per item."""
    co = (bm.T @ bm).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    counts = np.asarray(bm.sum(axis=0)).ravel()
    return prune(sparse.diags(1.0 / np.maximum(counts, 1)) @ co, neighbours)


def follow_on(bm: sparse.csr_matrix, users: np.ndarray, times: np.ndarray, neighbours: int) -> sparse.csr_matrix:
    """P(j in a customer's next basket | i in this one), items x items (diagonal kept: a repurchase), the top
    ``neighbours`` per item."""
    order = np.lexsort((times, users))
    same = users[order][1:] == users[order][:-1]
    prev, nxt = order[:-1][same], order[1:][same]
    tr = (bm[prev].T @ bm[nxt]).tocsr()
    counts = np.asarray(bm[prev].sum(axis=0)).ravel()
    return prune(sparse.diags(1.0 / np.maximum(counts, 1)) @ tr, neighbours)


def fit_als(p: Personal, cfg: SignalConfig, seed: int = 7):
    """An ``implicit`` ALS model on the decayed customer x item frequencies; (user factors, item factors)."""
    from implicit.cpu.als import AlternatingLeastSquares  # deferred: a heavy import only the fit needs

    weights = p.decayed.copy()
    weights.data = 1.0 + cfg.als_alpha * np.log1p(weights.data * 4)
    with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS threads inside them only fight
        model = AlternatingLeastSquares(factors=cfg.factors, regularization=cfg.als_regularization,
                                        iterations=cfg.als_iterations, random_state=seed,
                                        num_threads=1)  # fmt: skip
        model.fit(weights.tocsr().astype(np.float32), show_progress=False)
    return np.asarray(model.user_factors), np.asarray(model.item_factors)


def segment_popularity(p: Personal, segment: np.ndarray, n_segments: int) -> np.ndarray:
    """segments x items: the share of a segment's customers who bought the item, recency-weighted."""
    member = _csr(np.arange(len(segment)), segment, np.ones(len(segment)), (len(segment), n_segments))
    bought = p.decayed.copy()
    bought.data = np.minimum(bought.data, 1.0)
    pop = np.asarray((member.T @ bought).todense())
    sizes = np.asarray(member.sum(axis=0)).ravel()
    return pop / np.maximum(sizes, 1)[:, None]


def recent_weights(p: Personal) -> sparse.csr_matrix:
    """customers x items: how much each bought item should pull its co-purchases (recent ones more), row-normalised."""
    w = p.decayed.copy()
    rows = np.asarray(w.sum(axis=1)).ravel()
    return (sparse.diags(1.0 / np.maximum(rows, 1e-9)) @ w).tocsr()
