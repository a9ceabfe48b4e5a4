"""The recommender: signals + candidates + the learned blend, fitted on one ``Baskets``; ranks items per customer
and says why (``recommend/reasons.py``).

Fitting learns the blend from validation customers' held-out latest purchases: the signals are fitted on the
history without them, candidates for those customers are labelled by what they then bought, and the blend is
fitted on those rows. The signals are then fitted again on the whole history, for predicting.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from recommend.baskets import Baskets, Targets, holdout
from recommend.blend import Blend
from recommend.candidates import CandidateConfig, Signals, blocks, co_source, feature_names
from recommend.reasons import RecReason
from recommend.signals import SignalConfig

log = logging.getLogger(__name__)

Segmenter = Callable[[Baskets], dict[str, tuple[np.ndarray, list[str]]]]  # baskets -> kind -> (labels, names)


def is_validation(customer_id: str, share: float = 0.5) -> bool:
    """A fixed hash split of customers: the validation share (tuning, the blend) and the rest (reporting)."""
    h = int(hashlib.sha1(customer_id.encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < share


def frequency_segments(b: Baskets) -> dict[str, tuple[np.ndarray, list[str]]]:
    """The F of RFM where a layout has no dates or money: a customer's basket count in quintiles (F1..F5)."""
    n = np.bincount(b.lines["user"], minlength=b.n_users)
    nb = np.zeros(b.n_users)
    per = b.lines.groupby("user")["basket"].nunique()
    nb[per.index] = per.to_numpy()
    edges = np.quantile(nb[n > 0], [0.2, 0.4, 0.6, 0.8]) if (n > 0).any() else np.zeros(4)
    return {"frequency": (np.searchsorted(edges, nb, side="right"), [f"F{i}" for i in range(1, 6)])}


@dataclass(frozen=True)
class RecommenderConfig:
    signals: SignalConfig
    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    clusters: int = 8  # behavioural clusters (0: none)
    segments: bool = True  # False: no segment signal at all (the ablation)
    validation_share: float = 0.5
    holdout_days: float | None = None  # None: the last basket is held out; else this many days
    max_train_users: int = 6000
    iterations: int = 200  # of the blend's boosting
    leaves: int = 31  # per tree


@dataclass
class Recommendation:
    item: str
    score: float
    repeat: bool
    reason: RecReason


class Recommender:
    def __init__(self, signals: Signals, blend: Blend, config: RecommenderConfig) -> None:
        self.signals, self.blend, self.config = signals, blend, config
        self._users = signals.baskets.user_index()
        self._popular = np.argsort(-signals.items.recent_buyers, kind="stable")

    @classmethod
    def fit(cls, baskets: Baskets, config: RecommenderConfig, segmenter: Segmenter | None = None,
            content: np.ndarray | None = None) -> Recommender:  # fmt: skip
        def signals_of(b: Baskets) -> Signals:
            segments = (segmenter or frequency_segments)(b) if config.segments else {}
            return Signals.fit(b, config.signals, segments, content, config.clusters if config.segments else 0)

        history, targets = holdout(baskets, config.holdout_days)
        train = [u for u in targets if is_validation(u, config.validation_share)][: config.max_train_users]
        fitted = signals_of(history)
        x, y = labelled(fitted, train, targets, config.candidates)
        log.info("blend: %d rows, %d positives, %d customers", len(y), int(y.sum()), len(train))
        blend = Blend(feature_names(fitted), config.iterations, config.leaves).fit(x, y)
        return cls(signals_of(baskets), blend, config)

    def knows(self, user: str) -> bool:
        """Whether this customer has a purchase in the fitted history."""
        u = self._users.get(user)
        return u is not None and self.signals.personal.n_baskets[u] > 0

    def rank(self, users: list[str], k: int) -> dict[str, list[tuple[str, float]]]:
        """Each customer's top ``k`` items with their scores (unknown customers: the most popular items)."""
        items = self.signals.baskets.items
        known = np.array([self._users[u] for u in users if u in self._users], dtype=np.int64)
        out: dict[str, list[tuple[str, float]]] = {}
        for block in blocks(self.signals, known, self.config.candidates):
            score = self.blend.score(block.x)
            order = np.lexsort((-score, block.users))
            bu, bi, bs = block.users[order], block.items[order], score[order]
            starts = np.flatnonzero(np.r_[True, bu[1:] != bu[:-1]])
            ends = np.r_[starts[1:], len(bu)]
            for s, e in zip(starts, ends, strict=True):
                top = slice(s, min(e, s + k))
                out[self.signals.baskets.users[bu[s]]] = [
                    (items[i], float(v)) for i, v in zip(bi[top], bs[top], strict=True)
                ]
        fill = [(items[i], 0.0) for i in self._popular[: 2 * k]]
        for u in users:
            got = out.setdefault(u, [])
            if len(got) < k:
                seen = {i for i, _ in got}
                got += [f for f in fill if f[0] not in seen][: k - len(got)]
        return {u: out[u] for u in users}

    def recommend(self, user: str, k: int, allowed: Callable[[str], bool] = lambda _: True) -> list[Recommendation]:
        """This customer's top ``k`` allowed items, each with its reason."""
        ranked = self.rank([user], max(4 * k, 50))[user]
        picks = [(item, score) for item, score in ranked if allowed(item)][:k]
        return [self._explain(user, item, score) for item, score in picks]

    def _explain(self, user: str, item: str, score: float) -> Recommendation:
        s = self.signals
        u, i = self._users.get(user), s.baskets.item_index()[item]
        if u is None:
            return Recommendation(item, score, False, RecReason(kind="popular"))
        p = s.personal
        count, gap = float(p.count[u, i]), float(p.gap[u, i]) - 1
        if count >= 2 and gap > 0:
            return Recommendation(item, score, True, RecReason(kind="cycle", every=gap, unit=s.baskets.unit))
        if count >= 1:
            return Recommendation(item, score, True, RecReason(kind="repeat", times=int(count)))
        source = co_source(s, u, i)
        if source is not None and float(s.co[source, i]) >= 0.05:
            return Recommendation(item, score, False, RecReason(kind="bought_with", with_item=s.baskets.items[source]))
        base = s.items.buyers[i] / max(1, s.baskets.n_users)
        for kind in sorted(s.segments):
            label = int(s.segments[kind][u])
            if s.segment_pop[kind][label, i] >= 2 * base and s.segment_pop[kind][label, i] > 0.01:
                return Recommendation(item, score, False,
                                      RecReason(kind="segment", segment=s.segment_names[kind][label]))  # fmt: skip
        return Recommendation(item, score, False, RecReason(kind="similar_shoppers"))


def labelled(s: Signals, users: list[str], targets: Targets, cfg: CandidateConfig, negatives: float = 0.25,
             seed: int = 7) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Candidate feature rows for these customers, labelled 1 where the candidate is in their target; of the
    (many) negative rows only a random ``negatives`` share is kept."""
    index, items = s.baskets.user_index(), s.baskets.item_index()
    ids = np.array([index[u] for u in users if u in index], dtype=np.int64)
    n_items = s.baskets.n_items
    target = np.unique(np.array([index[u] * n_items + items[i] for u in users if u in index for i in targets[u]
                                 if i in items], dtype=np.int64))  # fmt: skip
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for block in blocks(s, ids, cfg):
        y = np.isin(block.users.astype(np.int64) * n_items + block.items, target)
        kept = y | (rng.random(len(y)) < negatives)  # a uniform share of negatives: the ranking is unchanged
        xs.append(block.x[kept])
        ys.append(y[kept])
    return np.concatenate(xs), np.concatenate(ys).astype(np.int8)
