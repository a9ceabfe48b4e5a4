"""``kefu eval clv``: BG/NBD + Gamma-Gamma on a calibration period, scored on the following holdout period.

Per customer with a purchase in calibration (``segmentation.clv`` conventions: purchases are customer-days):
- bgnbd: expected purchases in the holdout given the calibration history;
- naive: the customer's calibration repeat-purchase rate (repeat purchases / T days) x holdout days;
- gamma_gamma.mae_value: mean |expected spend per purchase - actual mean holdout spend per purchase| over customers
  who bought in the holdout.
Both dates are inclusive: calibration = dates <= calibration end, holdout = (calibration end, holdout end].
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import typer

from kefu.console import console, print_json
from kefu.errors import KefuError
from segmentation import clv
from segmentation.transactions import TransactionColumns, load_transactions


def scores(predicted, actual) -> dict[str, float]:
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    error = predicted - actual
    corr = float(np.corrcoef(predicted, actual)[0, 1]) if predicted.std() > 0 and actual.std() > 0 else float("nan")
    return {
        "mae_purchases": float(np.abs(error).mean()),
        "rmse_purchases": float(np.sqrt((error**2).mean())),
        "corr": corr,
        "pred_total": float(predicted.sum()),
        "actual_total": float(actual.sum()),
    }


def evaluate(con, calibration_end: date, holdout_end: date) -> tuple[dict, dict]:
    """(the result JSON, extra details: fitted parameters and counts) for the ``transactions`` table in ``con``."""
    summary, report = clv.calibration_summary(con, calibration_end, holdout_end)
    horizon = (holdout_end - calibration_end).days
    x, tx, big_t = summary["frequency"], summary["recency"], summary["T"]
    bgnbd = clv.fit_bgnbd(x, tx, big_t)
    gg = clv.fit_gamma_gamma(x, summary["monetary_value"])
    predicted = clv.expected_purchases(bgnbd, horizon, x, tx, big_t)
    naive = np.where(big_t > 0, x / big_t.clip(lower=1), 0.0) * horizon
    actual = summary["holdout_purchases"].to_numpy()
    bought = summary["holdout_value"].notna().to_numpy()
    spend = clv.expected_spend(gg, x, summary["monetary_value"])
    result = {
        "customers": int(len(summary)),
        "bgnbd": scores(predicted, actual),
        "naive": scores(naive, actual),
        "gamma_gamma": {
            "mae_value": float(np.abs(spend[bought] - summary["holdout_value"].to_numpy()[bought]).mean())
            if bought.any()
            else float("nan")
        },
    }
    details = {"bgnbd_params": vars(bgnbd), "gamma_gamma_params": vars(gg), "horizon_days": horizon, **vars(report)}
    return result, details


def parse_day(text: str, option: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise KefuError(f"{option} must be a date like 1997-09-30, got {text!r}.") from None


def clv_command(
    transactions: Path = typer.Option(..., help="CSV or Parquet file, one row per transaction."),
    customer_col: str = typer.Option(..., help="Customer id column."),
    date_col: str = typer.Option(..., help="Transaction date column."),
    amount_col: str = typer.Option(..., help="Amount column (negative = return)."),
    calibration_end: str = typer.Option(..., help="Last day of the calibration period (YYYY-MM-DD)."),
    holdout_end: str = typer.Option(..., help="Last day of the holdout period (YYYY-MM-DD)."),
    date_format: str | None = typer.Option(None, help="strptime format of the date column, e.g. %Y%m%d."),
    json_out: bool = typer.Option(False, "--json", help="Print only the JSON result on stdout."),
) -> None:
    """Fit BG/NBD + Gamma-Gamma on the calibration period and score it and a naive model on the holdout."""
    cal_end, hold_end = parse_day(calibration_end, "--calibration-end"), parse_day(holdout_end, "--holdout-end")
    con = duckdb.connect()
    loaded = load_transactions(
        con, transactions, TransactionColumns(customer_col, date_col, amount_col), date_format=date_format
    )
    result, details = evaluate(con, cal_end, hold_end)
    if details["rows_after_holdout_end"]:
        console.print(
            f"[yellow]warning:[/yellow] {details['rows_after_holdout_end']} row(s) dated after "
            f"{hold_end} were left out."
        )
    if details["new_in_holdout"]:
        console.print(f"{details['new_in_holdout']} customer(s) first bought in the holdout: not scored.")
    console.print(
        f"loaded {loaded.rows} rows ({loaded.duplicate_rows} duplicate rows kept as repeat purchases, "
        f"{loaded.negative_amount_rows} negative, {loaded.zero_amount_rows} zero); "
        f"{details['return_days']} return day(s) not counted as purchases."
    )
    console.print(f"BG/NBD {details['bgnbd_params']}\nGamma-Gamma {details['gamma_gamma_params']}")
    if json_out:
        print_json(result)
    else:
        console.print_json(data=result)
