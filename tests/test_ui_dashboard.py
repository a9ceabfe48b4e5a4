"""The analysts' segments dashboard: the per-segment views and campaign rows on a real small fit, then the whole
web server in Debian's chromium (filter, views, CSV download, screenshot), the staff gate and the page without a
fit."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import pytest

from kefu.errors import StoreError
from segmentation import export, report
from segmentation.profiles import ProfileEvent, ProfileStore, drift
from segmentation.workspace import segments_db, segments_dir
from tests.browser import chromium, screens_dir, web_server
from tests.segmentation_fit import copy_of_fit


@pytest.fixture
def fitted(demo_store, tmp_path_factory, tmp_path):
    return copy_of_fit(demo_store, tmp_path_factory.getbasetemp(), tmp_path)


@pytest.fixture
def shots(tmp_path_factory) -> Path:
    return screens_dir(tmp_path_factory)


def segment_members(settings, segment: str) -> set[str]:
    with duckdb.connect(str(segments_db(settings)), read_only=True) as con:
        rows = con.execute("SELECT customer_id FROM customer_rfm WHERE segment = $s", {"s": segment}).fetchall()
    return {r[0] for r in rows}


def test_campaign_rows_are_the_segments_customers(fitted):
    tables = report.load_tables(fitted)
    segment = report.segments_by_size(tables)[1]
    rows = export.campaign_rows(fitted, segment)
    names = {int(k): v for k, v in json.loads((segments_dir(fitted) / "fit.json").read_text())["cluster_names"].items()}

    assert list(rows.columns) == export.COLUMNS
    assert set(rows["customer_id"]) == segment_members(fitted, segment) and rows["customer_id"].is_unique
    assert (rows["segment"] == segment).all()
    assert all(names[c] == p for c, p in zip(rows["cluster"], rows["persona"], strict=True))
    assert set(rows["clv_band"].dropna()) <= {"low", "mid", "high"}
    assert rows["clv_expected_value"].is_monotonic_decreasing  # best prospects first
    assert rows["propensity"].between(0, 1).all() and rows["r"].between(1, 5).all()

    everyone = export.campaign_rows(fitted)
    assert len(everyone) == len(tables["rfm"])
    bands = everyone["clv_band"].value_counts()
    assert bands.max() - bands.min() <= 2  # terciles of the whole fit


def test_write_csv_has_a_header_and_one_row_per_customer(fitted, tmp_path):
    segment = report.segments_by_size(report.load_tables(fitted))[0]
    count = export.write_csv(fitted, segment, tmp_path / "out" / "c.csv")
    lines = list(csv.reader((tmp_path / "out" / "c.csv").open()))
    assert lines[0] == export.COLUMNS
    assert count == len(lines) - 1 == len(segment_members(fitted, segment))
    assert {line[0] for line in lines[1:]} == segment_members(fitted, segment)


def test_no_fit_names_the_command(settings):
    with pytest.raises(StoreError, match="kefu segment fit"):
        export.campaign_rows(settings, "Loyal")
    with pytest.raises(StoreError, match="kefu segment fit"):
        report.load_tables(settings)
    settings.data_dir.mkdir(parents=True)
    duckdb.connect(str(segments_db(settings))).close()  # a fit that stopped before writing its tables
    with pytest.raises(StoreError, match="incomplete.*kefu segment fit"):
        report.load_tables(settings)


def test_figures_for_one_segment_show_only_its_customers(fitted):
    tables, personas = report.load_tables(fitted), report.load_personas(fitted)
    segment = report.segments_by_size(tables)[0]
    size = len(segment_members(fitted, segment))
    figures = dict(report.figures(tables, personas, segment))

    bars = figures["Segment sizes"].data[0]
    assert set(bars.x) == set(tables["rfm"]["segment"])  # every segment stays, the chosen one stands out
    colours = dict(zip(bars.x, bars.marker.color, strict=True))
    others = {c for s, c in colours.items() if s != segment}
    assert len(others) == 1 and colours[segment] not in others
    heat = figures["RFM heat map"].data[0]
    assert sum(int(cell.split()[0]) for row in heat.text for cell in row if cell) == size  # others blank
    assert sum(len(trace.x) for trace in figures["Cluster map"].data) == size
    everyone = {t.name: t.marker.color for t in dict(report.figures(tables, personas))["Cluster map"].data}
    assert all(everyone[t.name] == t.marker.color for t in figures["Cluster map"].data)  # a persona keeps its colour
    assert segment in figures["Cluster map"].layout.title.text
    assert report.for_segment(tables, None) is tables

    view = report.for_segment(tables, segment)
    counts = report.persona_counts(view)
    assert sum(counts.values()) == size
    cards = report.persona_cards(personas, counts, f"the {segment} segment")
    assert cards.count("class='card'") == len(personas) and f"of them in the {segment} segment" in cards


def test_drift_figure_shows_fit_and_live_shares():
    moved = drift({"Loyal": 0.5, "Lost": 0.5}, {"Loyal": 80, "Lost": 20}, 0.1)
    figure = report.drift_figure(moved)
    assert [t.name for t in figure.data] == ["at fit", "live"]
    live = dict(zip(figure.data[1].x, figure.data[1].y, strict=True))
    assert live == {"Loyal": 0.8, "Lost": 0.2} and "drifted" in figure.layout.title.text
    assert "no drift" in report.drift_figure(drift({"Loyal": 1.0}, {"Loyal": 3}, 0.1)).layout.title.text


def test_dashboard_in_a_browser_filters_and_exports(fitted, shots, tmp_path):
    demo = fitted.model_copy(update={"demo": True, "auth_secret": None})
    live = ProfileStore.load(fitted)  # a new customer since the fit: the live shares move a little
    live.record(
        ProfileEvent(customer_id="new-since-fit", ts=datetime(2018, 1, 5, 12), type="order", amount=30, lines=3)
    )
    tables = report.load_tables(fitted)
    segment = report.segments_by_size(tables)[1]
    members = segment_members(fitted, segment)
    with web_server(demo) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.goto(f"{base}/dashboard/")
        for elem in ("dash-sizes", "dash-rfm", "dash-clusters", "dash-clv", "dash-drift-plot"):
            page.wait_for_selector(f"#{elem} .js-plotly-plot", timeout=60_000)
        assert f"{len(tables['rfm']):,} customers" in page.inner_text("#dash-summary")
        moved = live.drift()
        assert 0 < moved.tvd < 0.1 and f"distance {moved.tvd:.4f}" in page.inner_text("#dash-drift")
        assert "No drift" in page.inner_text("#dash-drift") and "threshold 0.1" in page.inner_text("#dash-drift")
        assert page.locator("#dash-personas .card").count() == len(report.load_personas(fitted))
        assert "Customers per RFM segment" in page.inner_text("#dash-sizes")

        page.click("#dash-segment input")
        page.get_by_role("option", name=segment, exact=True).click()
        page.wait_for_function(
            "s => document.querySelector('#dash-clusters').innerText.includes(s)", arg=segment, timeout=30_000
        )
        page.wait_for_function(
            "n => document.querySelector('#dash-download').innerText.includes(n)", arg=f"({len(members):,} customers)"
        )
        assert f"{segment}: {len(members):,} of" in page.inner_text("#dash-summary")
        assert f"{segment} highlighted" in page.inner_text("#dash-sizes")
        assert f"of them in the {segment} segment" in page.inner_text("#dash-personas")

        with page.expect_download() as info:
            page.click("#dash-download")
        download = info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        page.screenshot(path=shots / "dashboard.png", full_page=True)

    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert saved.suffix == ".csv" and list(rows[0]) == export.COLUMNS
    assert {r["customer_id"] for r in rows} == members and {r["segment"] for r in rows} == {segment}


def test_dashboard_without_a_fit_names_the_command(settings):
    settings.data_dir.mkdir(parents=True)
    demo = settings.model_copy(update={"demo": True, "auth_secret": None})
    with web_server(demo) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/dashboard/")
        page.wait_for_selector("#dash-notice", state="visible", timeout=60_000)
        text = page.inner_text("#dash-notice")
        assert "kefu segment fit" in text and "Traceback" not in page.content()
        assert not page.locator("#dash-body").is_visible()


def test_dashboard_is_staff_only(settings):
    staff = settings.model_copy(update={"auth_secret": "s" * 32, "agent_key": "the-agent-key"})
    with web_server(staff) as base:
        opened = httpx.get(f"{base}/dashboard/", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/staff?next=/dashboard/"
        assert httpx.get(f"{base}/dashboard/gradio_api/info").status_code == 401
        with httpx.Client(base_url=base, follow_redirects=True) as client:
            signed = client.post("/staff", data={"key": "the-agent-key", "next": "/dashboard/"})
            assert signed.status_code == 200 and "Kefu segments" in signed.text
