"""``kefu eval recommend``: the next-basket recommender against the published baselines, in one run.

Two layouts. The Reality Check's files (``--history``, ``--targets``): every customer's history, the next basket
of some. The shop's store (``--store``, ``--as-of``, ``--days``): orders strictly before as-of, and what each
customer bought in the ``days`` after (items sold before as-of only, as the Reality Check keeps items seen in
history; customers with orders before as-of and such a target).

Customers with targets are split by a fixed hash (``recommend.model.is_validation``): every tuned choice and the
blend use the validation customers only (the blend: their held-out latest history, never the targets scored
here); figures are reported for the validation customers, the rest, and all. Methods: G-TopFreq, P-TopFreq,
GP-TopFreq, implicit ALS, Kefu's recommender, Kefu's without any segment signal (the ablation), and on a store
whose title embeddings ``kefu segment fit`` has kept, Kefu's with the content signal added.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import typer

from kefu.console import print_json
from kefu.errors import KefuError
from recommend import baselines, metrics
from recommend.baskets import Baskets, Targets, from_layout, read_layout, store_targets
from recommend.model import Recommender, RecommenderConfig, Segmenter, is_validation
from recommend.store import history_config, rfm_segmenter, store_baskets, store_config, title_cache, title_vectors
from segmentation.workspace import workspace

K = 20


def _timed(fn: Callable[[], dict[str, list[str]]]) -> tuple[dict[str, list[str]], float]:
    start = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - start, 2)


def _ours(b: Baskets, cfg: RecommenderConfig, segmenter: Segmenter | None, users: list[str],
          content: np.ndarray | None = None) -> dict[str, list[str]]:  # fmt: skip
    model = Recommender.fit(b, cfg, segmenter, content)
    return {u: [i for i, _ in ranked] for u, ranked in model.rank(users, K).items()}


def evaluate(b: Baskets, targets: Targets, configs: tuple[RecommenderConfig, RecommenderConfig],
             segmenter: Segmenter | None, share: float, content: np.ndarray | None = None) -> dict:  # fmt: skip
    """Every method's figures on these targets (customers of ``b`` only); with ``content`` (title vectors of
    ``b``'s items) also the recommender with the content signal added."""
    index = b.user_index()
    users = [u for u in targets if u in index]
    history: dict[str, set[str]] = {}
    for u, i in zip(b.lines["user"].to_numpy(), b.lines["item"].to_numpy(), strict=True):
        history.setdefault(b.users[u], set()).add(b.items[i])
    parts = {"validation": [u for u in users if is_validation(u, share)]}
    parts["rest"] = [u for u in users if not is_validation(u, share)]
    parts["all"] = users
    half_life = configs[0].signals.half_life
    methods = {
        "G-TopFreq": lambda: baselines.g_topfreq(b, users, K),
        "P-TopFreq": lambda: baselines.p_topfreq(b, users, K),
        "GP-TopFreq": lambda: baselines.gp_topfreq(b, users, K),
        "implicit-ALS": lambda: baselines.als_topk(b, users, K, half_life),
        "kefu": lambda: _ours(b, configs[0], segmenter, users),
        "kefu-no-segments": lambda: _ours(b, configs[1], segmenter, users),
    }
    if content is not None:
        methods["kefu+content"] = lambda: _ours(b, configs[0], segmenter, users, content)
    report: dict = {"customers": {p: len(us) for p, us in parts.items()}, "k": list(metrics.KS), "methods": {}}
    for name, fn in methods.items():
        ranked, seconds = _timed(fn)
        report["methods"][name] = {p: metrics.score(ranked, targets, history, us) for p, us in parts.items()}
        report["methods"][name]["seconds"] = seconds
    return report


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def recommend_command(
    history: Path | None = typer.Option(None, help="Reality Check history JSON ({customer: [[-1], basket, …]})."),
    targets: Path | None = typer.Option(None, help="Reality Check target JSON (the next basket, same layout)."),
    store: Path | None = typer.Option(None, help="A store (DuckDB) to evaluate on its own orders instead."),
    as_of: str | None = typer.Option(None, help="Store layout: history is orders strictly before this date."),
    days: int = typer.Option(91, min=1, help="Store layout: the target window after --as-of, in days."),
    share: float = typer.Option(0.5, min=0.05, max=0.95, help="Share of customers in the validation split."),
    out: Path | None = typer.Option(None, help="Also write the JSON report here."),
) -> None:
    """Recall, nDCG and PHR at 10 and 20 (all, repeat, explore) for the baselines and the recommender; JSON."""
    started = time.perf_counter()
    if store is not None:
        if history is not None or targets is not None:
            raise KefuError("Give either --store (with --as-of) or --history and --targets, not both.")
        if as_of is None:
            raise KefuError("--store needs --as-of YYYY-MM-DD (history is the orders strictly before it).")
        try:
            day = datetime.strptime(as_of, "%Y-%m-%d")
        except ValueError:
            raise KefuError(f"--as-of must be a date like 2017-10-01, got {as_of!r}.") from None
        b = store_baskets(store, day)
        with workspace(store) as con:
            window = store_targets(con, day, days)
        known = set(b.items)
        wanted = {u: t & known for u, t in window.items() if t & known}
        report = {"layout": "store", "store": str(store), "as_of": as_of, "days": days}
        vectors = title_vectors(store, b.items, title_cache(store))
        report |= evaluate(b, wanted, (store_config(), store_config(False)), rfm_segmenter(store, day), share, vectors)
    else:
        if history is None or targets is None:
            raise KefuError("Give --history and --targets (Reality Check JSON files), or --store with --as-of.")
        b = from_layout(read_layout(history, "history"))
        wanted = {u: set(bs[-1]) for u, bs in read_layout(targets, "targets").items() if bs}
        report = {"layout": "reality_check", "history": str(history), "targets": str(targets)}
        report |= evaluate(b, wanted, (history_config(), history_config(False)), None, share)
    report |= {"split": f"sha1 hash of the customer id, validation share {share}", "machine": _machine(),
               "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    print_json(report)
