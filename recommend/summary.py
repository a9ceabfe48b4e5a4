"""What the recommender recommends, per customer segment, for the dashboard: the top categories of each
segment's recommendations (under the display policy) and the share of them the customer bought before (repeat)
or not (explore). Computed when the recommender is fitted and kept beside it (``segments.json``)."""

from __future__ import annotations

from collections import Counter

import duckdb
import numpy as np

from recommend.model import Recommender
from recommend.policy import DisplayPolicy

TOP_CATEGORIES = 5


def by_segment(model: Recommender, con: duckdb.DuckDBPyConnection, k: int = 10, kind: str = "rfm") -> list[dict]:
    """[{segment, customers, repeat_share, explore_share, top_categories: [[category, share], ...]}], largest first."""
    s = model.signals
    if kind not in s.segments:
        return []
    shown = DisplayPolicy.load().shown(con)
    category = dict(con.execute("SELECT product_id, category FROM products").fetchall())
    users = [u for u in s.baskets.users if model.knows(u)]
    ranked = model.rank(users, 5 * k)
    index, items = s.baskets.user_index(), s.baskets.item_index()
    per: dict[int, dict] = {}
    for user in users:
        picks = [item for item, _ in ranked[user] if item in shown][:k]
        label = int(s.segments[kind][index[user]])
        row = per.setdefault(label, {"customers": 0, "repeat": 0, "picks": 0, "categories": Counter()})
        row["customers"] += 1
        row["picks"] += len(picks)
        row["repeat"] += sum(s.personal.count[index[user], items[i]] > 0 for i in picks)
        row["categories"].update(category.get(i) or "unknown" for i in picks)
    out = []
    for label, row in sorted(per.items(), key=lambda kv: -kv[1]["customers"]):
        n = max(row["picks"], 1)
        out.append({
            "segment": s.segment_names[kind][label],
            "customers": row["customers"],
            "repeat_share": round(float(np.float64(row["repeat"]) / n), 3),
            "explore_share": round(1 - float(np.float64(row["repeat"]) / n), 3),
            "top_categories": [[c, round(m / n, 3)] for c, m in row["categories"].most_common(TOP_CATEGORIES)],
        })  # fmt: skip
    return out
