"""One small segmentation fit on the demo store, shared by the segmentation test files (made once per session).

The clusters are fitted on 30 customers with few distinct products, so the test embeds a few hundred product
titles rather than 20,000; every other step (features, RFM, CLV, GBM propensity, profiles) runs on all customers.
Personas use the template (no LLM); the transformer comparison is left to `kefu segment fit` (see
test_segmentation_propensity for its fine-tuning path)."""

from __future__ import annotations

import shutil
from pathlib import Path

from kefu.settings import Settings

_fitted: dict[Path, tuple[Path, dict]] = {}


def cluster_sample(store_path: Path, n: int = 30, max_products: int = 8) -> list[str]:
    from segmentation.workspace import workspace

    with workspace(store_path) as con:
        rows = con.execute(
            """
            SELECT o.customer_id FROM orders o JOIN order_items i USING (order_id)
            GROUP BY 1 HAVING count(DISTINCT i.product_id) <= $m ORDER BY hash(o.customer_id) LIMIT $n
        """,
            {"m": max_products, "n": n},
        ).fetchall()
    return [r[0] for r in rows]


def fitted_data_dir(demo_store: Path, root: Path) -> tuple[Path, dict]:
    """(data dir holding store.duckdb and a fit, fit report); fitted once per session."""
    if demo_store not in _fitted:
        from segmentation.pipeline import fit_all

        data_dir = root / "fitted"
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(demo_store, data_dir / "store.duckdb")
        settings = Settings(data_dir=data_dir)
        report = fit_all(
            settings,
            llm=None,
            with_transformer=False,
            k_range=range(2, 5),
            cluster_customers=cluster_sample(settings.store_path),
        )
        _fitted[demo_store] = (data_dir, report)
    return _fitted[demo_store]


def copy_of_fit(demo_store: Path, root: Path, tmp_path: Path) -> Settings:
    """A private copy of the fitted data dir (for tests that record events)."""
    source, _ = fitted_data_dir(demo_store, root)
    target = tmp_path / "data"
    shutil.copytree(source, target)
    return Settings(data_dir=target)
