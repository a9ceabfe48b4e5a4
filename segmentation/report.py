"""``kefu segment report --html FILE``: one self-contained HTML page (plotly.js inline, works offline) with the
segment sizes, an RFM heat map (R x F: customers and mean monetary), the 2-D cluster map (first two principal
axes of the clustering space) with persona names, the CLV distribution, and the persona cards.

The same figures serve the analysts' dashboard (``ui/dashboard.py``), there also for one RFM segment at a time
(``figures(..., segment=...)``: the sizes chart keeps every segment and highlights the chosen one, the other
views show only its customers), with the segment-mix drift since the fit (``drift_figure``)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from kefu.settings import Settings
from segmentation.workspace import fitted_tables, segments_dir


def load_tables(settings: Settings) -> dict[str, pd.DataFrame]:
    with fitted_tables(settings) as con:
        return {
            "rfm": con.execute("SELECT customer_id, r, f, m, segment, monetary FROM customer_rfm").df(),
            "clusters": con.execute("SELECT customer_id, cluster, x, y FROM customer_clusters").df(),
            "clv": con.execute("SELECT * FROM customer_clv").df(),
            "propensity": con.execute("SELECT * FROM customer_propensity").df(),
        }


def load_personas(settings: Settings) -> list[dict]:
    """The fit's persona cards (``segments/personas.json``); [] when none were written."""
    path = segments_dir(settings) / "personas.json"
    return json.loads(path.read_text()) if path.is_file() else []


def segments_by_size(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The RFM segments present in the fit, largest first."""
    return [str(s) for s in tables["rfm"]["segment"].value_counts().index]


def for_segment(tables: dict[str, pd.DataFrame], segment: str | None) -> dict[str, pd.DataFrame]:
    """The tables cut to one RFM segment's customers (``None``: all customers, unchanged)."""
    if segment is None:
        return tables
    rfm = tables["rfm"][tables["rfm"]["segment"] == segment]
    ids = set(rfm["customer_id"])
    return {"rfm": rfm} | {k: t[t["customer_id"].isin(ids)] for k, t in tables.items() if k != "rfm"}


def sizes_figure(rfm: pd.DataFrame, segment: str | None = None):
    """Customers per RFM segment; the chosen ``segment`` (if any) stands out, the others are greyed."""
    import plotly.express as px  # deferred: plotly is heavy-ish (~0.3 s), only the reports use it

    sizes = rfm["segment"].value_counts().rename_axis("segment").reset_index(name="customers")
    fig = px.bar(sizes, x="segment", y="customers", text="customers", title="Customers per RFM segment")
    if segment is not None:
        fig.update_traces(marker_color=["#1f77b4" if s == segment else "#c8c8c8" for s in sizes["segment"]])
        fig.update_layout(title=f"Customers per RFM segment ({segment} highlighted)")
    return fig


def figures(
    tables: dict[str, pd.DataFrame], personas: list[dict], segment: str | None = None
) -> list[tuple[str, object]]:
    """(title, plotly figure) per view; with ``segment``, every view but the sizes shows that segment only."""
    import plotly.express as px  # deferred: as above
    import plotly.graph_objects as go  # deferred: as above

    out = [("Segment sizes", sizes_figure(tables["rfm"], segment))]
    tables = for_segment(tables, segment)
    of = f" — {segment}" if segment else ""
    rfm = tables["rfm"]
    grid = rfm.groupby(["r", "f"]).agg(customers=("segment", "size"), monetary=("monetary", "mean")).reset_index()
    counts = grid.pivot(index="r", columns="f", values="customers").reindex(index=range(1, 6), columns=range(1, 6))
    spend = grid.pivot(index="r", columns="f", values="monetary").reindex(index=range(1, 6), columns=range(1, 6))
    heat = go.Figure(
        go.Heatmap(
            z=spend.to_numpy(),
            x=[f"F{f}" for f in spend.columns],
            y=[f"R{r}" for r in spend.index],
            text=[
                ["" if pd.isna(n) else f"{int(n)} customers<br>${m:.0f}" for n, m in zip(ns, ms, strict=True)]
                for ns, ms in zip(counts.to_numpy(), spend.to_numpy(), strict=True)
            ],  # empty cells (none of these customers) stay blank
            texttemplate="%{text}",
            colorscale="Blues",
            colorbar={"title": "mean monetary"},
        )
    )
    heat.update_layout(title=f"RFM grid{of}: customers and mean monetary per (R, F) cell (5 = best)")
    out.append(("RFM heat map", heat))
    names = {p["cluster"]: p["name"] for p in personas}
    points, note = sample(tables["clusters"], MAP_POINTS)
    points = points.sort_values("cluster")
    points = points.assign(persona=points["cluster"].map(lambda c: f"{c}: {names.get(c, '?')}"))
    palette = px.colors.qualitative.Plotly  # one colour per cluster, the same in every segment's map
    pairs = points[["cluster", "persona"]].drop_duplicates().itertuples(index=False)
    colours = {label: palette[int(c) % len(palette)] for c, label in pairs}
    out.append(
        (
            "Cluster map",
            px.scatter(
                points,
                x="x",
                y="y",
                color="persona",
                color_discrete_map=colours,
                opacity=0.6,
                hover_data=["customer_id"],
                title=f"Customers{of} on the first two principal axes of the clustering space, by cluster" + note,
            ),
        )
    )
    clv, note = sample(tables["clv"].dropna(subset=["expected_value"]), HISTOGRAM_VALUES)
    if not clv.empty:
        title = f"Expected value over the CLV horizon (BG/NBD x Gamma-Gamma){of}" + note
        out.append(("CLV distribution", px.histogram(clv, x="expected_value", nbins=60, title=title)))
    prop, note = sample(tables["propensity"], HISTOGRAM_VALUES)
    if not prop.empty:
        out.append(
            (
                "Purchase propensity",
                px.histogram(prop, x="propensity", nbins=40, title=f"Purchase propensity (served model){of}" + note),
            )
        )
    return out


MAP_POINTS, HISTOGRAM_VALUES = 5_000, 50_000  # a page a browser opens quickly, however many customers


def sample(frame: pd.DataFrame, n: int) -> tuple[pd.DataFrame, str]:
    """At most ``n`` rows (a seeded random sample) and a title note saying so when rows were left out."""
    if len(frame) <= n:
        return frame, ""
    return frame.sample(n, random_state=0), f"<br><sub>a random sample of {n:,} of {len(frame):,} customers</sub>"


def drift_figure(drift):
    """Fit-time vs live segment shares (a ``segmentation.profiles.Drift``), with the distance and threshold."""
    import plotly.graph_objects as go  # deferred: as above

    names = sorted(drift.fit_shares, key=lambda n: -drift.fit_shares[n])
    fig = go.Figure(
        [
            go.Bar(name="at fit", x=names, y=[drift.fit_shares[n] for n in names]),
            go.Bar(name="live", x=names, y=[drift.current_shares.get(n, 0.0) for n in names]),
        ]
    )
    verdict = "drifted" if drift.drifted else "no drift"
    fig.update_layout(
        barmode="group",
        yaxis_tickformat=".0%",
        title=f"Segment shares at fit vs live: TVD {drift.tvd:.4f} (threshold {drift.threshold:g}), {verdict}",
    )
    return fig


def persona_counts(tables: dict[str, pd.DataFrame]) -> dict[int, int]:
    """Customers per cluster in these (possibly cut) tables."""
    return {int(c): int(n) for c, n in tables["clusters"]["cluster"].dropna().value_counts().items()}


CARD_CSS = """.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1em}
.card{border:1px solid #ccc;border-radius:8px;padding:0.8em} .meta{color:#666;font-size:0.9em}"""


def persona_cards(personas: list[dict], in_view: dict[int, int] | None = None, view: str = "this view") -> str:
    """The persona cards as HTML; with ``in_view`` (cluster -> customers), each says how many are in ``view``."""
    cards = []
    for p in personas:
        stats = p["stats"]
        traits = "".join(
            f"<li>{html.escape(t['label'])}: {t['cluster_mean']:g} vs {t['population_mean']:g} "
            f"overall (z {t['z']:+.2f})</li>"
            for t in stats["traits"]
        )
        cats = ", ".join(f"{html.escape(c['name'])} (x{c['lift']:g})" for c in stats["top_categories"])
        count = (
            "" if in_view is None else f"<p><b>{in_view.get(p['cluster'], 0)}</b> of them in {html.escape(view)}</p>"
        )
        cards.append(
            f"<div class='card'><h3>{p['cluster']}: {html.escape(p['name'])}</h3>"
            f"<p>{html.escape(p['description'])}</p><p class='meta'>{stats['size']} customers "
            f"({stats['share'] * 100:.1f}%), text by {html.escape(p['source'])}</p><ul>{traits}</ul>"
            f"<p class='meta'>Over-represented categories: {cats or 'none'}</p>"
            f"{count}</div>"
        )
    return "".join(cards)


def write_html(settings: Settings, path: Path) -> dict:
    """Write the report; returns what it holds (sections and customer count)."""
    import plotly.io as pio  # deferred: as above

    personas = load_personas(settings)
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
{CARD_CSS}</style>
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
