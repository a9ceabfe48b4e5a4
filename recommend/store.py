"""The recommender on the shop's own store: its orders strictly before an as-of date, the customers' RFM segments
as ``segmentation`` scores them at that date, and the fitted model cached in the data dir for the service.

``kefu recommend fit`` (run by ``make segments``) writes ``recommend/recommender.joblib``; the assistant loads it
at start (``load``) and, when it is missing or stale, keeps its older behaviour and says so in the log.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

import joblib
import numpy as np

from kefu.errors import StoreError
from kefu.settings import Settings
from recommend.baskets import Baskets, from_store
from recommend.candidates import CandidateConfig
from recommend.model import Recommender, RecommenderConfig
from recommend.signals import SignalConfig
from recommend.summary import by_segment
from segmentation.clusters import TitleEmbeddingCache
from segmentation.rfm import load_rules, rfm_from_store
from segmentation.workspace import workspace

log = logging.getLogger(__name__)

WINDOW_DAYS = 91  # what a store recommendation is for: the next 13 weeks (and what the blend holds out)
FORMAT = 1


def store_config(segments: bool = True) -> RecommenderConfig:
    """Tuned on the demo store's validation customers (orders before 2017-10-01): small trees (the store's
    customers are few) learned from a 60-day hold-out, and more of the segment's popular items as candidates."""
    return RecommenderConfig(SignalConfig(half_life=60.0), CandidateConfig(segment=50), holdout_days=60,
                             iterations=100, leaves=8, segments=segments)  # fmt: skip


def history_config(segments: bool = True) -> RecommenderConfig:
    """For the Reality Check layout (time in baskets): 100 boosting rounds; 200 scored the same on Ta-Feng's
    validation customers (recall@10 0.157 vs 0.155, nDCG@10 0.138 both) at a third more CPU."""
    return RecommenderConfig(SignalConfig(half_life=3.0), iterations=100, segments=segments)


def rfm_segmenter(store_path: Path, as_of: datetime):
    """A segmenter giving each customer their RFM segment as ``segmentation`` scores it at the baskets' own
    "now" (``as_of`` shifted back by what ``holdout`` held out), so a fit never sees later orders."""

    def segments(b: Baskets) -> dict[str, tuple[np.ndarray, list[str]]]:
        at = as_of + timedelta(days=b.now_offset)
        names = list(dict.fromkeys(r.segment for r in load_rules()))
        with workspace(store_path) as con:
            rfm_from_store(con, at)
            rows = dict(con.execute("SELECT customer_id, segment FROM customer_rfm").fetchall())
        names += sorted({s for s in rows.values() if s not in names})
        code = {n: i for i, n in enumerate(names)}
        unknown = len(names)
        labels = np.array([code.get(rows.get(u, ""), unknown) for u in b.users], dtype=np.int64)
        return {"rfm": (labels, [*names, "new"])}

    return segments


def title_vectors(store_path: Path, items: list[str], cache: Path) -> np.ndarray | None:
    """Unit vectors of the items' titles from the title embeddings ``kefu segment fit`` keeps (read only; an item
    it lacks gets a zero vector), or None without that file."""
    if not cache.is_file():
        return None
    vectors = TitleEmbeddingCache(cache).vectors
    with workspace(store_path) as con:
        titles = dict(con.execute("SELECT product_id, title FROM products").fetchall())
    dim = len(next(iter(vectors.values()))) if vectors else 0
    zero = np.zeros(dim, dtype=np.float32)
    out = np.stack([vectors.get(TitleEmbeddingCache.key(i, titles.get(i, "")), zero) for i in items])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def title_cache(store_path: Path) -> Path:
    """Where ``kefu segment fit`` keeps the title embeddings of the store in ``store_path``'s data dir."""
    return store_path.parent / "segments" / "title_embeddings.npz"


def store_baskets(store_path: Path, as_of: datetime) -> Baskets:
    with workspace(store_path) as con:
        return from_store(con, as_of)


def fit_store(store_path: Path, as_of: datetime, segments: bool = True, content: bool = False) -> Recommender:
    """The recommender on the store's orders before ``as_of``. ``content`` adds the title-embedding signal; it is
    off by default because on the demo store's validation customers it did not help (``kefu eval recommend``
    reports it as "kefu+content")."""
    b = store_baskets(store_path, as_of)
    vectors = title_vectors(store_path, b.items, title_cache(store_path)) if content else None
    return Recommender.fit(b, store_config(segments), rfm_segmenter(store_path, as_of), vectors)


def model_dir(settings: Settings) -> Path:
    return settings.data_dir / "recommend"


def last_order_day(store_path: Path) -> datetime:
    with workspace(store_path) as con:
        last = con.execute("SELECT max(ordered_at) FROM orders").fetchall()[0][0]
    if last is None:
        raise StoreError(f"The store at {store_path} has no orders to recommend from.")
    return datetime(last.year, last.month, last.day) + timedelta(days=1)


def _stamp(settings: Settings) -> dict:
    st = settings.store_path.stat()
    return {"format": FORMAT, "store": str(settings.store_path), "store_mtime": st.st_mtime, "store_size": st.st_size}


def is_current(settings: Settings) -> bool:
    meta = model_dir(settings) / "fit.json"
    if not meta.is_file() or not settings.store_path.is_file():
        return False
    saved = json.loads(meta.read_text())
    return {k: saved.get(k) for k in _stamp(settings)} == _stamp(settings)


def fit_and_save(settings: Settings) -> dict:
    """Fit on every order in the store (as of the day after the last one) and cache it; returns what was fitted."""
    as_of = last_order_day(settings.store_path)
    model = fit_store(settings.store_path, as_of)
    out = model_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "recommender.joblib.tmp"
    joblib.dump(model, tmp)
    tmp.replace(out / "recommender.joblib")
    with workspace(settings.store_path) as con:
        (out / "segments.json").write_text(json.dumps(by_segment(model, con), indent=2))
    meta = _stamp(settings) | {"as_of": f"{as_of:%Y-%m-%d}", "customers": model.signals.baskets.n_users,
                               "items": model.signals.baskets.n_items}  # fmt: skip
    (out / "fit.json").write_text(json.dumps(meta, indent=2))
    return meta


def segment_summary(settings: Settings) -> list[dict]:
    """Per RFM segment, the fitted recommender's top categories and repeat/explore share ([] when not fitted)."""
    path = model_dir(settings) / "segments.json"
    return json.loads(path.read_text()) if path.is_file() else []


def load(settings: Settings) -> Recommender | None:
    """The cached recommender, or None (with a log line saying what to run) when it is missing or stale."""
    path = model_dir(settings) / "recommender.joblib"
    if not path.is_file():
        log.warning("no fitted recommender in %s; recommendations use the category search (run `kefu recommend fit`)",
                    model_dir(settings))  # fmt: skip
        return None
    if not is_current(settings):
        log.warning("the fitted recommender is older than the store; recommendations use the category search "
                    "(run `kefu recommend fit`)")  # fmt: skip
        return None
    return joblib.load(path)
