"""Next-basket metrics as the NBR Reality Check (TOIS 2023) defines them: Recall@k, nDCG@k (the ideal DCG over
the whole target basket, not capped at k) and PHR@k (the share of customers with at least one hit), each also
split into repeat items (in the customer's history) and explore items (not), over the customers that have such
items, with the ranking kept as it is."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

KS = (10, 20)


def recall(ranked: Sequence[str], target: set[str], k: int) -> float:
    return len(set(ranked[:k]) & target) / len(target)


def ndcg(ranked: Sequence[str], target: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(n + 2) for n, item in enumerate(ranked[:k]) if item in target)
    ideal = sum(1.0 / math.log2(n + 2) for n in range(len(target)))
    return dcg / ideal


def hit(ranked: Sequence[str], target: set[str], k: int) -> float:
    return float(any(item in target for item in ranked[:k]))


def score(
    ranked: Mapping[str, Sequence[str]],
    targets: Mapping[str, set[str]],
    history: Mapping[str, set[str]],
    users: Iterable[str],
    ks: Sequence[int] = KS,
) -> dict[str, dict[str, float | int]]:
    """{"all" | "repeat" | "explore": {"recall@10": …, "ndcg@10": …, "phr@10": …, "customers": n}} over ``users``
    (customers whose target is empty for a part are left out of that part)."""
    out: dict[str, dict[str, float | int]] = {}
    for part in ("all", "repeat", "explore"):
        rows: dict[str, list[float]] = {}
        n = 0
        for u in users:
            target = targets[u]
            seen = history.get(u, set())
            if part == "repeat":
                target = target & seen
            elif part == "explore":
                target = target - seen
            if not target:
                continue
            n += 1
            got = ranked.get(u, [])
            for k in ks:
                rows.setdefault(f"recall@{k}", []).append(recall(got, target, k))
                rows.setdefault(f"ndcg@{k}", []).append(ndcg(got, target, k))
                rows.setdefault(f"phr@{k}", []).append(hit(got, target, k))
        out[part] = {name: round(float(np.mean(v)), 4) for name, v in rows.items()} | {"customers": n}
    return out
