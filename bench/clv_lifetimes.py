"""Compare Kefu's BG/NBD + Gamma-Gamma (``kefu eval clv``) with the ``lifetimes`` package on the same CDNOW split.

``lifetimes`` 0.11.3 does not run with the project's pandas 3 / numpy 2, so it is not a project dependency: this
script runs itself a second time under another interpreter that has it, e.g. a throw-away venv:

    python3 -m venv /tmp/lt && /tmp/lt/bin/pip install lifetimes 'pandas<2.2' 'numpy<2' 'scipy<1.14'
    .venv/bin/python bench/clv_lifetimes.py --lifetimes-python /tmp/lt/bin/python

Both sides use the same file, dates and metrics (lifetimes' ``calibration_and_holdout_data`` with freq="D"; the
naive model is each customer's calibration repeat rate x holdout days). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
CDNOW = REPO / "data" / "cdnow" / "cdnow_master.csv"
CAL_END, HOLDOUT_END = "1997-09-30", "1998-06-30"


def metrics(predicted, actual) -> dict:
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    error = predicted - actual
    return {
        "mae_purchases": float(np.abs(error).mean()),
        "rmse_purchases": float(np.sqrt((error**2).mean())),
        "corr": float(np.corrcoef(predicted, actual)[0, 1]),
        "pred_total": float(predicted.sum()),
        "actual_total": float(actual.sum()),
    }


def lifetimes_side(path: Path) -> dict:
    """Runs under the interpreter that has lifetimes."""
    import lifetimes  # deferred: only in the lifetimes interpreter (not a project dependency)
    from lifetimes import BetaGeoFitter, GammaGammaFitter  # deferred: as above
    from lifetimes.utils import calibration_and_holdout_data  # deferred: as above

    tx = pd.read_csv(path, dtype={"customer_id": str}, parse_dates=["date"])
    start = time.perf_counter()
    summary = calibration_and_holdout_data(
        tx,
        "customer_id",
        "date",
        calibration_period_end=CAL_END,
        observation_period_end=HOLDOUT_END,
        freq="D",
        monetary_value_col="amount",
    )
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency_cal"], summary["recency_cal"], summary["T_cal"])
    horizon = summary["duration_holdout"].iloc[0]
    predicted = bgf.conditional_expected_number_of_purchases_up_to_time(
        horizon, summary["frequency_cal"], summary["recency_cal"], summary["T_cal"]
    )
    repeaters = summary[(summary["frequency_cal"] > 0) & (summary["monetary_value_cal"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(repeaters["frequency_cal"], repeaters["monetary_value_cal"])
    elapsed = time.perf_counter() - start
    spend = ggf.conditional_expected_average_profit(summary["frequency_cal"], summary["monetary_value_cal"])
    bought = summary["frequency_holdout"] > 0
    value_error = (spend[bought] - summary.loc[bought, "monetary_value_holdout"]).abs().mean()
    actual = summary["frequency_holdout"]
    naive = np.where(summary["T_cal"] > 0, summary["frequency_cal"] / summary["T_cal"].clip(lower=1), 0) * horizon
    return {
        "version": lifetimes.__version__,
        "seconds_summary_and_fit": round(elapsed, 2),
        "customers": int(len(summary)),
        "bgnbd": metrics(predicted, actual),
        "naive": metrics(naive, actual),
        # lifetimes' monetary_value_holdout is the mean per transaction row (Kefu: per purchase day).
        "gamma_gamma": {
            "mae_value": float(value_error),
            "holdout_value": "mean per transaction row (lifetimes' calibration_and_holdout_data)",
        },
        "bgnbd_params": {k: float(v) for k, v in bgf.params_.items()},
        "gamma_gamma_params": {k: float(v) for k, v in ggf.params_.items()},
    }


def kefu_side(path: Path) -> dict:
    import duckdb  # deferred: this file also runs under the lifetimes interpreter, which has no duckdb

    from eval.clv import evaluate  # deferred: the lifetimes interpreter has no Kefu either
    from segmentation.transactions import TransactionColumns, load_transactions  # deferred: as above

    start = time.perf_counter()
    con = duckdb.connect()
    load_transactions(con, path, TransactionColumns("customer_id", "date", "amount"))
    result, details = evaluate(con, date.fromisoformat(CAL_END), date.fromisoformat(HOLDOUT_END))
    result["seconds_load_summary_and_fit"] = round(time.perf_counter() - start, 2)
    result["bgnbd_params"] = details["bgnbd_params"]
    result["gamma_gamma_params"] = details["gamma_gamma_params"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=Path, default=CDNOW)
    parser.add_argument("--lifetimes-python", help="interpreter with lifetimes installed (omit to skip that side)")
    parser.add_argument("--side", choices=["kefu", "lifetimes"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "lifetimes":
        print(json.dumps(lifetimes_side(args.transactions)))
        return
    out = {
        "data": f"CDNOW (real), calibration to {CAL_END}, holdout to {HOLDOUT_END}, purchases = customer-days",
        "kefu": kefu_side(args.transactions),
    }
    if args.lifetimes_python:
        done = subprocess.run(
            [args.lifetimes_python, __file__, "--side", "lifetimes", "--transactions", str(args.transactions)],
            capture_output=True,
            text=True,
            check=False,
        )
        out["lifetimes"] = (
            json.loads(done.stdout.strip().splitlines()[-1])
            if done.returncode == 0
            else {"error": done.stderr.strip().splitlines()[-1:]}
        )
    else:
        out["lifetimes"] = {"skipped": "pass --lifetimes-python PATH (see the module docstring)"}
    if "bgnbd" in out["lifetimes"]:
        ours, theirs = out["kefu"]["bgnbd"], out["lifetimes"]["bgnbd"]
        out["difference"] = {k: ours[k] - theirs[k] for k in ours}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
