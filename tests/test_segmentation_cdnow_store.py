"""The whole segmentation (`kefu segment fit`: features, RFM, clusters, personas, CLV, propensity, live profiles) on
real CDNOW, a transaction file without a catalogue, through `kefu store from-transactions`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from kefu.settings import Settings
from segmentation.profiles import ProfileEvent, ProfileStore
from ui.cli import app

CDNOW = Path(__file__).resolve().parent.parent / "data" / "cdnow" / "cdnow_master.csv"  # real CDNOW (MIT)
COLUMNS = ["--customer-col", "customer_id", "--date-col", "date", "--amount-col", "amount"]


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory) -> tuple[Settings, dict]:
    from segmentation.pipeline import fit_all

    settings = Settings(data_dir=tmp_path_factory.mktemp("cdnow"))
    env = {"KEFU_DATA_DIR": str(settings.data_dir)}
    done = CliRunner().invoke(app, ["store", "from-transactions", str(CDNOW), *COLUMNS, "--json"], env=env)
    assert done.exit_code == 0, done.output
    built = json.loads(done.output)
    assert (built["rows"], built["customers"], built["duplicate_rows"]) == (69659, 23570, 255)
    report = fit_all(settings, llm=None, with_transformer=False)
    return settings, report


def test_every_step_runs_without_a_catalogue(cdnow):
    _, report = cdnow
    json.dumps(report, allow_nan=False)  # no NaN from the empty taste block
    assert report["customers"] == 23570 and report["as_of"] == "1998-07-01"
    clusters = report["clusters"]
    assert clusters["taste_components"] == 0 and clusters["taste_explained_variance"] == 0.0
    assert 3 <= clusters["k"] <= 8 and clusters["silhouette"] > 0 and len(report["personas"]) == clusters["k"]
    assert report["clv"]["customers"] == 23570 and report["clv"]["bgnbd_converged"]
    assert report["propensity"]["served"] == "gbm" and report["propensity"]["gbm"]["roc_auc"] > 0.6


def test_store_rfm_equals_the_transaction_file_rfm(cdnow):
    """Two paths to the same RFM: the store built from the file, and `segment rfm` on the file itself."""
    from segmentation.rfm import load_rules, rfm_from_transactions
    from segmentation.transactions import TransactionColumns, load_transactions
    from segmentation.workspace import segments_db

    settings, _ = cdnow
    con = duckdb.connect()
    load_transactions(con, CDNOW, TransactionColumns("customer_id", "date", "amount"))
    rfm_from_transactions(con, datetime(1998, 7, 1), load_rules())
    con.execute(f"ATTACH '{segments_db(settings)}' AS fit (READ_ONLY)")
    compared, differing = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE (a.recency_days, a.frequency, a.r, a.f, a.m, a.segment)
                                                 IS DISTINCT FROM (b.recency_days, b.frequency, b.r, b.f, b.m,
                                                                   b.segment)
                                                 OR abs(a.monetary - b.monetary) > 1e-6)
        FROM customer_rfm a JOIN fit.customer_rfm b USING (customer_id)
    """).fetchall()[0]
    assert (compared, differing) == (23570, 0)


def test_profiles_band_one_time_buyers_honestly_and_update_live(cdnow):
    settings, _ = cdnow
    store = ProfileStore.load(settings)
    once = store.get("00001")  # one purchase, on the first day of the data
    assert once.features["frequency"] == 1 and once.p_alive == 1.0  # BG/NBD's convention for no repeat purchase
    assert once.alive_band == "one purchase day" and once.top_categories == []
    after = store.record(
        ProfileEvent(customer_id="00001", ts=once.as_of + timedelta(hours=12), type="order", amount=20.0, lines=1)
    ).profile
    assert after.features["frequency"] == 2 and after.alive_band == "likely active" and after.r == 5


def test_a_bad_file_leaves_the_built_store_alone(cdnow, tmp_path, monkeypatch, capsys):
    from ui.cli import main

    settings, _ = cdnow
    before = settings.store_path.stat().st_mtime_ns
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,date,amount\n1,1997-01-01,3.5\n2,not a date,4\n")
    monkeypatch.setenv("KEFU_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("sys.argv", ["kefu", "store", "from-transactions", str(bad), *COLUMNS])
    with pytest.raises(SystemExit) as exc:
        main()
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert exc.value.code == 2 and "column 'date' cannot be parsed as a date" in err and "first at row 2" in err
    assert "Traceback" not in err and settings.store_path.stat().st_mtime_ns == before


def test_the_report_samples_large_populations_and_says_so(cdnow, tmp_path):
    settings, _ = cdnow
    out = tmp_path / "report.html"
    done = CliRunner().invoke(
        app, ["segment", "report", "--html", str(out)], env={"KEFU_DATA_DIR": str(settings.data_dir)}
    )
    assert done.exit_code == 0, done.output
    text = out.read_text()
    assert "a random sample of 5,000 of 23,570 customers" in text  # the cluster map
    assert text.count("customer_id") < 20_000 and len(text) < 7_000_000  # plotly.js ~4.6 MB + the sampled data
