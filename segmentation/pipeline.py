"""``kefu segment fit``: features -> RFM -> clusters -> personas -> CLV -> propensity -> profiles, in one pass.

Tables go into ``segments.duckdb`` in the data dir (the store stays read-only): customer_features, customer_rfm,
customer_clusters (cluster and 2-D map position), customer_clv, customer_propensity and customer_profiles (one
row per customer joining them all, with the aggregates live updates start from). Model files go under
``segments/``: clusters.npz/json, personas.json, propensity.json (+ the served model), fit.json (fit-time segment
shares, RFM bin edges, price-band edges: what ``ProfileStore`` needs to update one customer without a recompute).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from kefu.embedder import Embedder, default_model_path
from kefu.errors import KefuError
from kefu.settings import Settings
from segmentation import clusters, clv, personas, propensity, rfm
from segmentation.features import build_features, default_as_of
from segmentation.workspace import FIT_FORMAT, segments_db, segments_dir, workspace

CLV_HORIZON_DAYS = 90
Progress = Callable[[str], None]

AGGREGATES_SQL = """
-- Per customer running totals that features can be recomputed from after one more order (same definitions
-- as segmentation/sql/features.sql: counted orders are not cancelled; purchase lines are not returns).
SELECT o.customer_id,
       min(o.ordered_at) AS first_order, max(o.ordered_at) AS last_order, count(DISTINCT o.order_id) AS n_orders,
       coalesce(sum(i.amount), 0) AS net_spend, count(i.order_id) AS n_lines,
       coalesce(sum(i.amount) FILTER (WHERE NOT i.is_return AND i.amount >= 0), 0) AS gross_spend,
       coalesce(sum(i.retail_disc + i.coupon_disc + i.coupon_match_disc)
                FILTER (WHERE NOT i.is_return AND i.amount >= 0), 0) AS discount_total,
       count(*) FILTER (WHERE NOT i.is_return AND i.amount >= 0) AS n_purchase_lines,
       count(*) FILTER (WHERE NOT i.is_return AND i.amount >= 0 AND i.coupon_disc + i.coupon_match_disc > 0)
           AS n_coupon_lines
FROM orders o LEFT JOIN order_items i USING (order_id)
WHERE o.ordered_at < $as_of AND o.status <> 'cancelled'
GROUP BY o.customer_id
"""

CATEGORY_SPEND_SQL = """
-- Gross spend per customer and (department, category) on purchase lines of counted orders (products known):
-- what the profile's top categories come from and what live updates add an order's lines to.
SELECT o.customer_id, p.department, p.category, sum(i.amount) AS spend
FROM orders o JOIN order_items i USING (order_id) JOIN products p USING (product_id)
WHERE o.ordered_at < $as_of AND o.status <> 'cancelled' AND NOT i.is_return AND i.amount >= 0
GROUP BY ALL
"""

TOP_CATEGORIES_SQL = """
SELECT customer_id, list(category ORDER BY spend DESC, category)[1:3] AS top_categories
FROM (SELECT customer_id, category, sum(spend) AS spend FROM customer_category_spend
      WHERE category IS NOT NULL GROUP BY ALL)
GROUP BY customer_id
"""


def fit_all(
    settings: Settings,
    *,
    llm=None,
    embedder=None,
    progress: Progress = lambda _: None,
    with_transformer: bool = True,
    cluster_customers: list[str] | None = None,
    epochs: int = 1,
    k_range: range = range(3, 9),
) -> dict:
    """Fit everything from the store; returns the fit report (also written to segments/fit.json).

    cluster_customers: fit the clusters on these customers only (the rest are assigned with an unknown taste;
    tests use it to embed few titles); llm None: template personas; embedder None: the project's embedder."""
    out_dir, db_path = segments_dir(settings), segments_db(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    embedder = embedder or Embedder(settings.embed_model)
    report: dict = {"fitted_at": datetime.now().isoformat(timespec="seconds")}
    tmp_db = db_path.with_name(db_path.name + ".fitting")
    tmp_db.unlink(missing_ok=True)
    with workspace(settings.store_path, tmp_db) as con:
        as_of = default_as_of(con)
        report["as_of"] = f"{as_of:%Y-%m-%d}"

        progress("features")
        report["customers"] = build_features(con, as_of)
        features = con.execute("SELECT * FROM customer_features ORDER BY customer_id").df()

        progress("RFM")
        rfm_report = rfm.rfm_from_store(con, as_of)
        edges = rfm.score_edges(con)
        report["rfm"] = {"segments": rfm_report.segments, "edges": edges}

        cache = clusters.TitleEmbeddingCache(out_dir / "title_embeddings.npz")
        model = clusters.cluster_store(
            con,
            features,
            embedder,
            cache,
            k_range=k_range,
            taste_customers=cluster_customers,
            method=settings.segment_cluster_method,
            fit_sample=settings.segment_fit_sample,
            progress=progress,
        )
        model.save(out_dir)
        # Personas describe the customers whose taste is known (everyone, unless the fit was limited).
        described = features.merge(
            con.execute("SELECT customer_id, cluster FROM customer_clusters").df(), on="customer_id"
        )
        if cluster_customers is not None:
            described = described[described["customer_id"].isin(set(cluster_customers))].reset_index(drop=True)
        labels, ids = described["cluster"].to_numpy(), described["customer_id"].tolist()
        report["clusters"] = model.report

        progress("personas")
        purchases = con.execute(
            """
            SELECT o.customer_id, p.department, p.category, count(*) AS n
            FROM orders o JOIN order_items i USING (order_id) JOIN products p USING (product_id)
            WHERE NOT i.is_return AND o.ordered_at < $as_of GROUP BY ALL
        """,
            {"as_of": as_of},
        ).df()
        purchases = purchases[purchases["customer_id"].isin(set(ids))]
        vocabulary = catalogue_names(con)
        stats = personas.cluster_stats(described, model.numeric_block(described), model.features, labels, purchases)
        cards = personas.write_personas(llm, stats, vocabulary)
        (out_dir / "personas.json").write_text(json.dumps([c.model_dump() for c in cards], indent=2))
        report["personas"] = [
            {"cluster": c.cluster, "name": c.name, "source": c.source, "size": c.stats.size, "note": c.note}
            for c in cards
        ]

        progress("CLV: BG/NBD + Gamma-Gamma")
        report["clv"] = fit_clv(con, as_of)

        progress("propensity: GBM baseline vs fine-tuned MiniLM on a time split")
        with workspace(settings.store_path) as scratch:
            prop_report, models = propensity.compare(
                scratch,
                settings.embed_model or default_model_path(),
                horizon_days=settings.propensity_horizon_days,
                with_transformer=with_transformer,
                epochs=epochs,
                on_step=lambda step, total, loss: progress(
                    f"propensity: fine-tuning MiniLM, step {step}/{total}, loss {loss:.3f}"
                ),
            )
            scored = propensity.score_all(scratch, prop_report, models, as_of)
            propensity.save(out_dir, prop_report, models)
        report["propensity"] = prop_report
        save_frame(con, "customer_propensity", scored)

        progress("profiles")
        con.execute("CREATE OR REPLACE TABLE customer_aggregates AS " + AGGREGATES_SQL, {"as_of": as_of})
        con.execute("CREATE OR REPLACE TABLE customer_category_spend AS " + CATEGORY_SPEND_SQL, {"as_of": as_of})
        con.execute("CREATE OR REPLACE TABLE customer_top_categories AS " + TOP_CATEGORIES_SQL)
        basket_size = features["avg_basket_size"].where(features["avg_basket_size"] > 0)
        item_price = features["avg_basket_value"] / basket_size
        price_edges = [float(v) for v in np.nanquantile(item_price, [1 / 3, 2 / 3])]
        shares = {k: v / rfm_report.customers_scored for k, v in rfm_report.segments.items()}
        meta = {
            "format": FIT_FORMAT,
            "as_of": as_of.isoformat(),
            "rfm_edges": edges,
            "segment_shares": shares,
            "price_edges": price_edges,
            "cluster_names": {c.cluster: c.name for c in cards},
            "propensity_served": prop_report["served"],
            "clv_horizon_days": CLV_HORIZON_DAYS,
            "clv_params": report["clv"].get("params"),
            "dept_columns": [c for c in features.columns if c.startswith("dept_")],
        }
        (out_dir / "fit.json").write_text(json.dumps({**meta, "report": report}, indent=2, default=str))
        con.execute("CHECKPOINT")
    tmp_db.replace(db_path)
    Path(str(tmp_db) + ".wal").unlink(missing_ok=True)
    log = out_dir / "profile_events.jsonl"
    if log.is_file():  # live events applied to the previous fit: kept beside it, not replayed on the new one
        shutil.move(log, out_dir / f"profile_events.{time.strftime('%Y%m%dT%H%M%S')}.jsonl")
    return report


def catalogue_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every department and category name of the shop (what persona text may name, when the stats list it)."""
    return {
        v
        for (v,) in con.execute(
            "SELECT DISTINCT department FROM products WHERE department IS NOT NULL "
            "UNION SELECT DISTINCT category FROM products WHERE category IS NOT NULL"
        ).fetchall()
    }


def fit_is_current(settings: Settings) -> bool:
    """A fit exists and was written in this version's format."""
    path = segments_dir(settings) / "fit.json"
    try:
        return segments_db(settings).is_file() and json.loads(path.read_text()).get("format") == FIT_FORMAT
    except (OSError, ValueError):
        return False


def save_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    con.register("_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _frame")
    finally:
        con.unregister("_frame")


def fit_clv(con: duckdb.DuckDBPyConnection, as_of: datetime) -> dict:
    """BG/NBD + Gamma-Gamma on the store's orders before ``as_of`` into table customer_clv."""
    con.execute("""
        CREATE OR REPLACE TEMP VIEW transactions AS
        SELECT o.customer_id, o.ordered_at AS ts, i.amount
        FROM orders o JOIN order_items i USING (order_id) WHERE o.status <> 'cancelled'
    """)
    try:
        summary, _ = clv.calibration_summary(con, (as_of - timedelta(days=1)).date())
        bgnbd = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
        gg = clv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    except KefuError as exc:
        con.execute(
            "CREATE OR REPLACE TABLE customer_clv (customer_id VARCHAR, p_alive DOUBLE, "
            "expected_purchases DOUBLE, expected_value DOUBLE, first_day DATE, last_day DATE, "
            "frequency BIGINT, monetary_value DOUBLE)"
        )
        return {"error": str(exc)}
    value = clv.customer_value(bgnbd, gg, summary, CLV_HORIZON_DAYS)
    # The model's inputs per customer too: live updates (segmentation/profile_update.py) continue from them.
    calibration_end = pd.Timestamp(as_of.date() - timedelta(days=1))
    value["first_day"] = calibration_end - pd.to_timedelta(summary["T"], unit="D")
    value["last_day"] = value["first_day"] + pd.to_timedelta(summary["recency"], unit="D")
    value["frequency"], value["monetary_value"] = summary["frequency"], summary["monetary_value"]
    value = value.reset_index()[
        [
            "customer_id",
            "p_alive",
            "expected_purchases",
            "expected_value",
            "first_day",
            "last_day",
            "frequency",
            "monetary_value",
        ]
    ]
    save_frame(con, "customer_clv", value)
    params = {
        "bgnbd": {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b},
        "gamma_gamma": {"p": gg.p, "q": gg.q, "v": gg.v},
    }
    return {
        "horizon_days": CLV_HORIZON_DAYS,
        "customers": len(value),
        "params": params,
        "bgnbd_converged": bgnbd.converged,
        "gamma_gamma_converged": gg.converged,
        "mean_expected_value": round(float(np.nanmean(value["expected_value"])), 2),
        "mean_p_alive": round(float(np.nanmean(value["p_alive"])), 3),
    }


def rename_personas(settings: Settings, llm) -> list[personas.Persona]:
    """Write the persona names and descriptions again from the saved stats (e.g. once the LLM is up), without
    refitting; updates personas.json and the names profiles show."""
    out_dir = segments_dir(settings)
    path, fit_path = out_dir / "personas.json", out_dir / "fit.json"
    if not path.is_file() or not fit_path.is_file():
        raise KefuError(f"No fitted personas in {out_dir}; run `kefu segment fit` first.")
    stats = [personas.Persona.model_validate(p).stats for p in json.loads(path.read_text())]
    with duckdb.connect(str(settings.store_path), read_only=True) as con:
        vocabulary = catalogue_names(con)
    cards = personas.write_personas(llm, stats, vocabulary)
    path.write_text(json.dumps([c.model_dump() for c in cards], indent=2))
    fit = json.loads(fit_path.read_text())
    fit["cluster_names"] = {c.cluster: c.name for c in cards}
    fit_path.write_text(json.dumps(fit, indent=2, default=str))
    return cards
