"""The learned blend: a gradient-boosted classifier over the candidate features, P(candidate in the next basket).

It is fitted on validation customers only, and on their held-out latest purchases (``baskets.holdout``), so the
customers scored later are never part of what it learned from.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

THREADS = 1  # two OpenMP runtimes (implicit's, scikit-learn's) spin against each other on 2 cores


class Blend:
    def __init__(self, features: list[str], iterations: int = 200, leaves: int = 31, seed: int = 7) -> None:
        self.features = features
        self.model = HistGradientBoostingClassifier(max_iter=iterations, learning_rate=0.08, max_leaf_nodes=leaves,
                                                    min_samples_leaf=100, l2_regularization=1.0,
                                                    early_stopping=False, random_state=seed)  # fmt: skip

    def fit(self, x: np.ndarray, y: np.ndarray) -> Blend:
        if y.sum() == 0:
            raise ValueError("no held-out purchase is among the candidates: nothing to learn the blend from")
        with threadpool_limits(THREADS):
            self.model.fit(x, y)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        with threadpool_limits(THREADS):
            return self.model.predict_proba(x)[:, 1]
