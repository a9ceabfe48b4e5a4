"""The analysts' segments dashboard (``/dashboard``): segment sizes, the RFM heat map, the 2-D cluster map, the CLV
and propensity distributions and the persona cards, for all customers or one RFM segment (the filter), the
segment-mix drift since the fit, and the chosen segment's customers as a CSV for a campaign.

Views only: the figures come from ``segmentation.report``, the CSV rows from ``segmentation.export``, the drift
from the profiles (the assistant's live ``ProfileStore`` when it has one, else the fit plus the replayed event
log). Everything is read when the page opens, so a new ``kefu segment fit`` shows after a reload; without a fit
the page says which command to run.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from pathlib import Path

import gradio as gr

from kefu.errors import KefuError
from recommend.store import segment_summary
from segmentation import export, report
from segmentation.profiles import Drift, ProfileStore
from ui.web import Server

ALL = "All"
PLOTS = {  # report.figures' titles -> elem_id
    "Segment sizes": "dash-sizes",
    "RFM heat map": "dash-rfm",
    "Cluster map": "dash-clusters",
    "CLV distribution": "dash-clv",
    "Purchase propensity": "dash-propensity",
}


def build_dashboard(server: Server) -> gr.Blocks:
    settings = server.settings
    exports = Path(tempfile.mkdtemp(prefix="kefu-dashboard-"))  # one CSV per segment, rewritten when asked again

    with gr.Blocks(title="Kefu segments") as page:
        gr.Markdown("## Kefu — customer segments")
        notice = gr.Markdown(visible=False, elem_id="dash-notice")
        with gr.Column(visible=False, elem_id="dash-body") as body:
            with gr.Row(equal_height=True):
                segment = gr.Dropdown([ALL], value=ALL, label="Segment", elem_id="dash-segment", scale=2)
                download = gr.DownloadButton("Download CSV", elem_id="dash-download", scale=1)
            summary = gr.Markdown(elem_id="dash-summary")
            plots: dict[str, gr.Plot] = {}
            titles = list(PLOTS)
            for row in (titles[0:2], titles[2:4]):
                with gr.Row():
                    for title in row:
                        plots[title] = gr.Plot(label=title, elem_id=PLOTS[title])
            gr.Markdown("### Personas")
            cards = gr.HTML(elem_id="dash-personas", css_template=report.CARD_CSS, js_on_load=None)
            with gr.Row():
                plots[titles[4]] = gr.Plot(label=titles[4], elem_id=PLOTS[titles[4]])
                with gr.Column():
                    drift_plot = gr.Plot(label="Drift since the fit", elem_id="dash-drift-plot")
                    drift_text = gr.Markdown(elem_id="dash-drift")
            gr.Markdown("### What the recommender recommends")
            recommended = gr.Markdown(elem_id="dash-recommended")

        view_outputs = [summary, cards, download, recommended, *plots.values()]

        def views(choice: str) -> dict:
            """The views for one segment (``ALL``: everyone): figures, persona counts, the CSV to download."""
            chosen = None if choice in (None, ALL) else choice
            tables, personas = report.load_tables(settings), report.load_personas(settings)
            figures = dict(report.figures(tables, personas, chosen))
            view = report.for_segment(tables, chosen)
            in_view = f"the {chosen} segment" if chosen else "all customers"
            out = {plots[t]: _sized(figures.get(t)) for t in PLOTS}
            out[cards] = (
                f"<div class='cards'>{report.persona_cards(personas, report.persona_counts(view), in_view)}</div>"
            )
            out[summary] = _summary(tables, view, chosen)
            out[recommended] = _recommended(segment_summary(settings), chosen)
            path = exports / f"kefu-{_slug(choice or ALL)}-customers.csv"
            partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")
            count = export.write_csv(settings, chosen, partial)
            partial.replace(path)  # whole: another session may be sending the previous file
            out[download] = gr.DownloadButton(f"Download CSV ({count:,} customers)", value=str(path))
            return out

        def open_page() -> dict:
            try:
                tables = report.load_tables(settings)
                profiles = _profiles(server)
                drift = profiles.drift()
                out = views(ALL)
            except KefuError as exc:
                return {notice: gr.Markdown(f"**The dashboard has nothing to show yet.** {exc}", visible=True),
                        body: gr.Column(visible=False)}  # fmt: skip
            choices = [ALL, *report.segments_by_size(tables)]
            return out | {
                notice: gr.Markdown(visible=False),
                body: gr.Column(visible=True),
                segment: gr.Dropdown(choices=choices, value=ALL),
                drift_plot: _sized(report.drift_figure(drift), 420),
                drift_text: _drift_text(drift, profiles.meta),
            }

        def show(choice: str) -> dict:
            try:
                return views(choice)
            except KefuError as exc:  # e.g. the fit was removed since the page opened: say so, no traceback
                raise gr.Error(str(exc)) from exc

        page.load(open_page, None, [notice, body, segment, drift_plot, drift_text, *view_outputs])
        segment.input(show, segment, view_outputs)
    return page


def _profiles(server: Server) -> ProfileStore:
    """The assistant's live profiles (updated by ``/v1/events``), else the fit with the event log replayed."""
    services = getattr(server.assistant, "services", None)
    live = getattr(services, "profiles", None)
    return live if isinstance(live, ProfileStore) else ProfileStore.load(server.settings)


def _sized(figure, height: int = 440):
    if figure is not None:
        figure.update_layout(height=height, margin={"t": 70, "l": 50, "r": 20, "b": 50}, title_font_size=14)
    return figure


def _summary(tables: dict, view: dict, chosen: str | None) -> str:
    total, shown = len(tables["rfm"]), len(view["rfm"])
    if chosen is None:
        return f"**{total:,} customers** with RFM scores, in {tables['rfm']['segment'].nunique()} segments."
    return f"**{chosen}**: {shown:,} of {total:,} customers ({shown / total:.1%})."


def _recommended(rows: list[dict], chosen: str | None) -> str:
    """Per segment: the top categories of its customers' top-10 recommendations and their repeat/explore share."""
    rows = [r for r in rows if chosen is None or r["segment"] == chosen]
    if not rows:
        return "No fitted recommender for this view yet (`kefu recommend fit`, run by `make segments`)."
    lines = ["| Segment | Customers | Repeat | Explore | Top recommended categories |", "|---|---:|---:|---:|---|"]
    for r in rows:
        top = ", ".join(f"{c.title()} ({share:.0%})" for c, share in r["top_categories"])
        lines.append(
            f"| {r['segment']} | {r['customers']:,} | {r['repeat_share']:.0%} | {r['explore_share']:.0%} | {top} |"
        )
    return "\n".join(lines)


def _drift_text(drift: Drift, meta: dict) -> str:
    verdict = "**Drifted**" if drift.drifted else "**No drift**"
    fitted = meta.get("report", {}).get("fitted_at", "?")
    return (
        f"{verdict}: total variation distance {drift.tvd:.4f} between the segment shares at the fit and now "
        f"(threshold {drift.threshold:g}, `KEFU_SEGMENT_DRIFT_THRESHOLD`); PSI {drift.psi:.4f}. "
        f"Fitted {fitted} on data as of {meta.get('as_of', '?')[:10]}; live shares include the customer events "
        "recorded since. Re-fit with `kefu segment fit` when it drifts."
    )


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "segment"
