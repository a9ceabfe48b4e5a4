"""A segment's customers as campaign rows (the dashboard's "Download CSV"): one row per customer of the fit with
the RFM segment and scores, the behavioural cluster and its persona name, CLV (expected value over the fit's
horizon, its band, P(alive) and its band), the served model's purchase propensity and the top categories.

Rows are what ``kefu segment fit`` wrote (segments.duckdb + fit.json), not the live profiles: a customer's live
updates since the fit (``/v1/events``) are not in the file. The CLV band is the customer's tercile of expected
value among all fitted customers (low / mid / high), whichever segment is exported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kefu.errors import StoreError
from kefu.settings import Settings
from segmentation.profiles import alive_band
from segmentation.workspace import fitted_tables, segments_dir

COLUMNS = ["customer_id", "segment", "r", "f", "m", "recency_days", "frequency", "monetary", "cluster", "persona",
           "clv_expected_value", "clv_band", "p_alive", "alive_band", "propensity", "top_categories"]  # fmt: skip

EXPORT_SQL = """
WITH edges AS (SELECT quantile_cont(expected_value, [1 / 3, 2 / 3]) AS q FROM customer_clv)
SELECT r.customer_id, r.segment, r.r, r.f, r.m, r.recency_days, r.frequency, round(r.monetary, 2) AS monetary,
       c.cluster, round(v.expected_value, 2) AS clv_expected_value,
       CASE WHEN v.expected_value IS NULL THEN NULL WHEN v.expected_value < e.q[1] THEN 'low'
            WHEN v.expected_value < e.q[2] THEN 'mid' ELSE 'high' END AS clv_band,
       round(v.p_alive, 3) AS p_alive, v.frequency AS repeat_days, round(p.propensity, 4) AS propensity,
       coalesce(array_to_string(t.top_categories, '; '), '') AS top_categories
FROM customer_rfm r CROSS JOIN edges e
LEFT JOIN customer_clusters c USING (customer_id)
LEFT JOIN customer_clv v USING (customer_id)
LEFT JOIN customer_propensity p USING (customer_id)
LEFT JOIN customer_top_categories t USING (customer_id)
WHERE $segment IS NULL OR r.segment = $segment
ORDER BY v.expected_value DESC NULLS LAST, r.customer_id
"""


def campaign_rows(settings: Settings, segment: str | None = None) -> pd.DataFrame:
    """The fitted customers of ``segment`` (None: everyone), highest expected value first, as ``COLUMNS``."""
    fit_path = segments_dir(settings) / "fit.json"
    if not fit_path.is_file():
        raise StoreError(f"No fitted segmentation in {settings.data_dir}; run `kefu segment fit` first.")
    names = {int(k): v for k, v in json.loads(fit_path.read_text())["cluster_names"].items()}
    with fitted_tables(settings) as con:
        rows = con.execute(EXPORT_SQL, {"segment": segment}).df()
    rows["cluster"] = rows["cluster"].astype("Int64")
    rows["persona"] = rows["cluster"].map(names, na_action="ignore")
    rows["alive_band"] = [
        alive_band(None if pd.isna(p) else p, None if pd.isna(d) else int(d))
        for p, d in zip(rows["p_alive"], rows["repeat_days"], strict=True)
    ]
    return rows[COLUMNS]


def write_csv(settings: Settings, segment: str | None, path: Path) -> int:
    """Write ``segment``'s campaign rows to ``path`` (CSV with a header); returns the number of customers."""
    rows = campaign_rows(settings, segment)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(path, index=False)
    return len(rows)
