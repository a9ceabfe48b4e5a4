"""``kefu segment report --html FILE``: one self-contained HTML page (plotly.js inline, works offline) with the
segment sizes, an RFM heat map (R x F: customers and mean monetary), the 2-D cluster map (first two principal
axes of the clustering space) with persona names, the CLV distribution, and the persona cards."""

from __future__ import annotations

import html
import json
from pathlib import Path

import duckdb
import pandas as pd

from kefu.errors import StoreError
from kefu.settings import Settings
from segmentation.workspace import segments_db, segments_dir


def load_tables(settings: Settings) -> dict[str, pd.DataFrame]:
    db_path = segments_db(settings)
    if not db_path.is_file():
        raise StoreError(f"No fitted segmentation in {settings.data_dir}; run `kefu segment fit` first.")
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return {
            "rfm": con.execute("SELECT r, f, m, segment, monetary FROM customer_rfm").df(),
            "clusters": con.execute("SELECT customer_id, cluster, x, y FROM customer_clusters").df(),
            "clv": con.execute("SELECT * FROM customer_clv").df(),
            "propensity": con.execute("SELECT * FROM customer_propensity").df(),
        }
    finally:
        con.close()


def figures(tables: dict[str, pd.DataFrame], personas: list[dict]) -> list[tuple[str, object]]:
    import plotly.express as px  # deferred: plotly is heavy-ish (~0.3 s), only the HTML report uses it
    import plotly.graph_objects as go  # deferred: as above

    rfm = tables["rfm"]
    sizes = rfm["segment"].value_counts().rename_axis("segment").reset_index(name="customers")
    out = [
        (
            "Segment sizes",
            px.bar(sizes, x="segment", y="customers", text="customers", title="Customers per RFM segment"),
        )
    ]
    grid = rfm.groupby(["r", "f"]).agg(customers=("segment", "size"), monetary=("monetary", "mean")).reset_index()
    counts = grid.pivot(index="r", columns="f", values="customers").reindex(index=range(1, 6), columns=range(1, 6))
    spend = grid.pivot(index="r", columns="f", values="monetary").reindex(index=range(1, 6), columns=range(1, 6))
    heat = go.Figure(
        go.Heatmap(
            z=spend.to_numpy(),
            x=[f"F{f}" for f in spend.columns],
            y=[f"R{r}" for r in spend.index],
            text=counts.fillna(0).astype(int).to_numpy(),
            texttemplate="%{text} customers<br>$%{z:.0f}",
            colorscale="Blues",
            colorbar={"title": "mean monetary"},
        )
    )
    heat.update_layout(title="RFM grid: customers and mean monetary per (R, F) cell (5 = best)")
    out.append(("RFM heat map", heat))
    names = {p["cluster"]: p["name"] for p in personas}
    points, note = sample(tables["clusters"], MAP_POINTS)
    points = points.sort_values("cluster")
    points = points.assign(persona=points["cluster"].map(lambda c: f"{c}: {names.get(c, '?')}"))
    out.append(
        (
            "Cluster map",
            px.scatter(
                points,
                x="x",
                y="y",
                color="persona",
                opacity=0.6,
                hover_data=["customer_id"],
                title="Customers on the first two principal axes of the clustering space, coloured by cluster" + note,
            ),
        )
    )
    clv, note = sample(tables["clv"].dropna(subset=["expected_value"]), HISTOGRAM_VALUES)
    if not clv.empty:
        title = "Expected value over the CLV horizon (BG/NBD x Gamma-Gamma)" + note
        out.append(("CLV distribution", px.histogram(clv, x="expected_value", nbins=60, title=title)))
    prop, note = sample(tables["propensity"], HISTOGRAM_VALUES)
    if not prop.empty:
        out.append(
            (
                "Purchase propensity",
                px.histogram(prop, x="propensity", nbins=40, title="Purchase propensity (served model)" + note),
            )
        )
    return out


MAP_POINTS, HISTOGRAM_VALUES = 5_000, 50_000  # a page a browser opens quickly, however many customers


def sample(frame: pd.DataFrame, n: int) -> tuple[pd.DataFrame, str]:
    """At most ``n`` rows (a seeded random sample) and a title note saying so when rows were left out."""
    if len(frame) <= n:
        return frame, ""
    return frame.sample(n, random_state=0), f"<br><sub>a random sample of {n:,} of {len(frame):,} customers</sub>"


def persona_cards(personas: list[dict]) -> str:
    cards = []
    for p in personas:
        stats = p["stats"]
        traits = "".join(
            f"<li>{html.escape(t['label'])}: {t['cluster_mean']:g} vs {t['population_mean']:g} "
            f"overall (z {t['z']:+.2f})</li>"
            for t in stats["traits"]
        )
        cats = ", ".join(f"{html.escape(c['name'])} (x{c['lift']:g})" for c in stats["top_categories"])
        cards.append(
            f"<div class='card'><h3>{p['cluster']}: {html.escape(p['name'])}</h3>"
            f"<p>{html.escape(p['description'])}</p><p class='meta'>{stats['size']} customers "
            f"({stats['share'] * 100:.1f}%), text by {html.escape(p['source'])}</p><ul>{traits}</ul>"
            f"<p class='meta'>Over-represented categories: {cats or 'none'}</p></div>"
        )
    return "".join(cards)


def write_html(settings: Settings, path: Path) -> dict:
    """Write the report; returns what it holds (sections and customer count)."""
    import plotly.io as pio  # deferred: as above

    personas_path = segments_dir(settings) / "personas.json"
    personas = json.loads(personas_path.read_text()) if personas_path.is_file() else []
    tables = load_tables(settings)
    sections = figures(tables, personas)
    parts = []
    for i, (title, fig) in enumerate(sections):
        fig.update_layout(height=480, margin={"t": 60})
        parts.append(
            f"<section><h2>{html.escape(title)}</h2>"
            + pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False)
            + "</section>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Kefu customer segments</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
.cards{{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1em}}
.card{{border:1px solid #ccc;border-radius:8px;padding:0.8em}} .meta{{color:#666;font-size:0.9em}}</style>
</head><body><h1>Customer segments</h1>
<p class="meta">{len(tables["rfm"])} customers with RFM scores; {len(personas)} behavioural clusters.</p>
<section><h2>Personas</h2><div class="cards">{persona_cards(personas)}</div></section>
{"".join(parts)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return {
        "path": str(path),
        "sections": ["Personas", *[t for t, _ in sections]],
        "customers": len(tables["rfm"]),
        "bytes": len(page),
    }
