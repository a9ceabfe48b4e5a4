"""CLV: BG/NBD beats the naive model on the real CDNOW holdout, the fitter recovers known parameters, the calibration
summary follows the lifetimes conventions, and bad input gives clear errors."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from eval.clv import evaluate
from kefu.errors import StoreError
from segmentation import clv
from segmentation.transactions import TransactionColumns, load_transactions
from ui.cli import app

CDNOW = Path(__file__).resolve().parent.parent / "data" / "cdnow" / "cdnow_master.csv"  # real CDNOW (MIT)
CAL_END, HOLDOUT_END = date(1997, 9, 30), date(1998, 6, 30)


@pytest.fixture(scope="module")
def cdnow_con():
    con = duckdb.connect()
    load_transactions(con, CDNOW, TransactionColumns("customer_id", "date", "amount"))
    return con


def test_bgnbd_beats_naive_on_cdnow_holdout(cdnow_con):
    result, details = evaluate(cdnow_con, CAL_END, HOLDOUT_END)
    assert set(result) == {"customers", "bgnbd", "naive", "gamma_gamma"}
    keys = {"mae_purchases", "rmse_purchases", "corr", "pred_total", "actual_total"}
    assert set(result["bgnbd"]) == set(result["naive"]) == keys
    assert result["customers"] == 23_570 and details["horizon_days"] == 273
    assert result["bgnbd"]["actual_total"] == result["naive"]["actual_total"] > 0
    assert result["bgnbd"]["mae_purchases"] < result["naive"]["mae_purchases"]
    assert result["bgnbd"]["rmse_purchases"] < result["naive"]["rmse_purchases"]
    # The aggregate forecast is in the right range (the naive rate extrapolation overshoots badly).
    assert abs(result["bgnbd"]["pred_total"] / result["bgnbd"]["actual_total"] - 1) < 0.25
    assert details["bgnbd_params"]["converged"] and details["gamma_gamma_params"]["converged"]
    assert 0 < result["gamma_gamma"]["mae_value"] < 40


def test_customer_value_on_cdnow(cdnow_con):
    summary, _ = clv.calibration_summary(cdnow_con, CAL_END)
    bgnbd = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    gg = clv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    value = clv.customer_value(bgnbd, gg, summary, horizon_days=365)
    assert len(value) == 23_570 and value.notna().all().all()
    assert value["p_alive"].between(0, 1).all() and (value["expected_value"] >= 0).all()
    one_timers = summary["frequency"] == 0
    assert (value.loc[one_timers, "p_alive"] == 1).all()  # BG/NBD: no repeat purchase, no evidence of dropout
    # A customer who bought often but long ago is less likely alive than one who bought often and recently.
    repeaters = summary[summary["frequency"] >= 5]
    stale = repeaters["recency"] < 30
    assert value.loc[repeaters[stale].index, "p_alive"].mean() < value.loc[repeaters[~stale].index, "p_alive"].mean()
    # More horizon, more expected purchases.
    more = clv.expected_purchases(bgnbd, 730, summary["frequency"], summary["recency"], summary["T"])
    assert (more >= value["expected_purchases"] - 1e-9).all()


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, horizon: float, seed: int = 0):
    """Synthetic customers drawn from the BG/NBD story (for checking the estimator only)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x, tx = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > horizon:
                break
            x[i] += 1
            tx[i] = t
            if rng.random() < p[i]:
                break
    return x, tx, np.full(n, horizon)


def test_fit_recovers_known_parameters():
    x, tx, big_t = simulate_bgnbd(6000, r=0.5, alpha=20.0, a=0.8, b=3.0, horizon=300.0)
    fit = clv.fit_bgnbd(x, tx, big_t)
    assert fit.converged
    assert fit.r == pytest.approx(0.5, rel=0.2) and fit.alpha == pytest.approx(20.0, rel=0.3)
    assert fit.a / (fit.a + fit.b) == pytest.approx(0.8 / 3.8, rel=0.3)  # the mean dropout probability


def write(tmp_path: Path, rows: list[tuple]) -> Path:
    path = tmp_path / "tx.csv"
    path.write_text("cust,day,amt\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def summary_of(path: Path, cal_end: date, holdout_end: date | None):
    con = duckdb.connect()
    load_transactions(con, path, TransactionColumns("cust", "day", "amt"))
    return clv.calibration_summary(con, cal_end, holdout_end)


def test_calibration_summary_conventions(tmp_path):
    rows = [
        ("a", "2024-01-01", 10),
        ("a", "2024-01-01", 5),  # one purchase day worth 15
        ("a", "2024-01-11", 20),
        ("a", "2024-01-21", -30),  # a repeat purchase; a return day
        ("a", "2024-02-05", 7),  # holdout
        ("b", "2024-01-31", 0),  # one zero-amount purchase on the last calibration day
        ("c", "2024-02-10", 9),  # first buys in the holdout: not in the summary
        ("a", "2024-03-15", 50),
    ]  # after the holdout end: counted, left out
    summary, report = summary_of(write(tmp_path, rows), date(2024, 1, 31), date(2024, 2, 29))
    a, b = summary.loc["a"], summary.loc["b"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (1, 10, 30, 20.0)
    assert (a["holdout_purchases"], a["holdout_value"]) == (1, 7.0)
    assert (b["frequency"], b["recency"], b["T"], b["holdout_purchases"]) == (0, 0, 0, 0)
    assert list(summary.index) == ["a", "b"]
    assert (report.rows_after_holdout_end, report.return_days, report.new_in_holdout) == (1, 1, 1)


def test_empty_windows_and_nothing_to_fit(tmp_path):
    path = write(tmp_path, [("a", "2024-01-10", 1), ("b", "2024-01-12", 2)])
    with pytest.raises(StoreError, match="calibration window is empty"):
        summary_of(path, date(2023, 12, 31), date(2024, 6, 30))
    with pytest.raises(StoreError, match="holdout period is empty"):
        summary_of(path, date(2024, 1, 31), date(2024, 1, 31))
    summary, _ = summary_of(path, date(2024, 1, 31), None)  # one purchase each
    with pytest.raises(StoreError, match="no customer made a repeat purchase"):
        clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    with pytest.raises(StoreError, match="Gamma-Gamma needs customers with repeat purchases"):
        clv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    with pytest.raises(StoreError, match="no customers"):
        clv.fit_bgnbd(np.array([]), np.array([]), np.array([]))


def test_eval_clv_cli_prints_the_json(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "clv",
            "--transactions",
            str(CDNOW),
            "--customer-col",
            "customer_id",
            "--date-col",
            "date",
            "--amount-col",
            "amount",
            "--calibration-end",
            "1997-09-30",
            "--holdout-end",
            "1998-06-30",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["customers"] == 23_570 and data["bgnbd"]["mae_purchases"] < data["naive"]["mae_purchases"]
    bad = CliRunner().invoke(
        app,
        [
            "eval",
            "clv",
            "--transactions",
            str(CDNOW),
            "--customer-col",
            "customer_id",
            "--date-col",
            "date",
            "--amount-col",
            "amount",
            "--calibration-end",
            "30/09/1997",
            "--holdout-end",
            "1998-06-30",
            "--json",
        ],
    )
    assert bad.exit_code != 0 and "--calibration-end must be a date" in str(bad.exception)


def test_fits_the_demo_store_without_trouble(demo_store):
    con = duckdb.connect(str(demo_store), read_only=True)
    con.execute("""CREATE TEMP VIEW transactions AS SELECT o.customer_id, o.ordered_at AS ts, i.amount
                   FROM orders o JOIN order_items i USING (order_id)""")
    result, details = evaluate(con, date(2017, 9, 30), date(2017, 12, 31))
    assert details["bgnbd_params"]["converged"] and details["gamma_gamma_params"]["converged"]
    assert details["new_in_holdout"] > 0 and details["rows_after_holdout_end"] > 0  # counted, not scored
    assert result["customers"] == 2377 - details["new_in_holdout"]
    assert abs(result["bgnbd"]["pred_total"] / result["bgnbd"]["actual_total"] - 1) < 0.1
    assert result["bgnbd"]["mae_purchases"] <= result["naive"]["mae_purchases"]
