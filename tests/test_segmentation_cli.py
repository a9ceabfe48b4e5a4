"""`kefu segment show` and `kefu segment report` over a real fit of the demo store."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from tests.segmentation_fit import fitted_data_dir
from ui.cli import app


@pytest.fixture(scope="module")
def data_dir(demo_store, tmp_path_factory):
    return fitted_data_dir(demo_store, tmp_path_factory.getbasetemp())[0]


def kefu(data_dir, *args: str):
    return CliRunner().invoke(app, list(args), env={"KEFU_DATA_DIR": str(data_dir)})


def test_show_json_has_every_part(data_dir):
    result = kefu(data_dir, "segment", "show", "2261", "--json")
    assert result.exit_code == 0, result.output
    profile = json.loads(result.stdout)
    assert profile["customer_id"] == "2261"
    for key in (
        "segment",
        "r",
        "f",
        "m",
        "cluster",
        "persona",
        "clv_expected_value",
        "p_alive",
        "propensity",
        "top_categories",
        "price_band",
    ):
        assert profile[key] is not None, key
    assert profile["features"]["frequency"] >= 1


def test_show_table(data_dir):
    result = kefu(data_dir, "segment", "show", "2261")
    assert result.exit_code == 0 and "segment" in result.output and "persona" in result.output


def test_unknown_customer_and_missing_fit_are_clear_errors(data_dir, tmp_path, monkeypatch, capsys):
    from ui.cli import main

    monkeypatch.setenv("KEFU_DATA_DIR", str(data_dir))
    monkeypatch.setattr("sys.argv", ["kefu", "segment", "show", "nobody"])
    with pytest.raises(SystemExit) as exc:
        main()
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert exc.value.code == 2 and "No profile for customer 'nobody'" in err and "Traceback" not in err
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr("sys.argv", ["kefu", "segment", "report", "--html", str(tmp_path / "r.html")])
    with pytest.raises(SystemExit):
        main()
    assert "run `kefu segment fit` first" in " ".join(capsys.readouterr().err.split())


class Page(HTMLParser):
    """Collects tags (checking they nest) and script sources."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "col", "source", "wbr", "area", "base", "embed", "track"}

    def __init__(self) -> None:
        super().__init__()
        self.stack, self.scripts, self.headings, self.errors = [], [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append(dict(attrs).get("src"))
        self._in_h2 = tag == "h2"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def test_report_is_a_self_contained_html_page(data_dir, tmp_path):
    out = tmp_path / "report.html"
    result = kefu(data_dir, "segment", "report", "--html", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    page = Page()
    page.feed(text)
    page.close()
    assert page.errors == [] and page.stack == []
    assert page.headings[:6] == [
        "Personas",
        "Segment sizes",
        "RFM heat map",
        "Cluster map",
        "CLV distribution",
        "Purchase propensity",
    ]
    assert all(src is None for src in page.scripts)  # plotly.js is inline: works offline
    assert "Plotly.newPlot" in text and text.count("Plotly.newPlot") == 5
    assert len(text) > 3_000_000  # plotly.js itself (~4.6 MB) is in the page
