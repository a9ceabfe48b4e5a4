"""Customer lifetime value: BG/NBD (repeat purchases, Fader, Hardie & Lee 2005) and Gamma-Gamma (spend per purchase,
Fader, Hardie & Lee 2005b), fitted by maximum likelihood with scipy.

Conventions follow the ``lifetimes`` package with ``freq="D"``:
- transactions are summed per customer and calendar day; a day is one purchase (a day whose net amount is negative is
  a return day: counted by ``calibration_summary`` and not a purchase);
- ``frequency`` = purchase days after the first one (repeat purchases), ``recency`` = days from the first to the last
  purchase day, ``T`` = days from the first purchase day to the end of the calibration period (inclusive date);
- ``monetary_value`` = mean value of the repeat purchase days (0 when there is none).
Time is in days, so ``alpha`` is in days and a horizon ``t`` is a number of days.

Fitting works on log parameters with bounds, from several starting points, keeping the best likelihood; a fit that
does not report convergence is returned with ``converged=False`` rather than raising. Not modelled: discounting,
margins (CLV here is expected purchases x expected spend per purchase over the horizon, undiscounted).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

from kefu.errors import StoreError

LOG_BOUND = 12.0  # parameters are searched within exp(+-12)


@dataclass(frozen=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float  # mean per customer
    converged: bool


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float
    log_likelihood: float
    converged: bool
    customers: int  # customers with repeat purchases and positive spend that the fit used


@dataclass
class SummaryReport:
    customers: int
    rows_after_holdout_end: int  # counted and left out
    return_days: int  # customer-days with a negative net amount: not purchases
    new_in_holdout: int  # customers whose first purchase is after the calibration end: not in the summary


def calibration_summary(
    con: duckdb.DuckDBPyConnection, calibration_end: date, holdout_end: date | None = None
) -> tuple[pd.DataFrame, SummaryReport]:
    """Per customer with a purchase on or before ``calibration_end``: frequency, recency, T, monetary_value, and
    with ``holdout_end`` also holdout_purchases (purchase days in the holdout) and holdout_value (their mean value).
    Reads the ``transactions`` table of ``segmentation.transactions``."""
    if holdout_end is not None and holdout_end <= calibration_end:
        raise StoreError(
            f"The holdout period is empty: its end {holdout_end} is not after the calibration end {calibration_end}."
        )
    end = holdout_end or calibration_end
    params = {"cal": calibration_end, "end": end}
    after_end, return_days, new_in_holdout = con.execute(
        """
        WITH days AS (SELECT customer_id, ts::DATE AS day, sum(amount) AS value FROM transactions
                      WHERE ts::DATE <= $end GROUP BY ALL)
        SELECT (SELECT count(*) FROM transactions WHERE ts::DATE > $end),
               (SELECT count(*) FROM days WHERE value < 0),
               (SELECT count(DISTINCT customer_id) FROM days WHERE value >= 0 AND customer_id NOT IN
                   (SELECT customer_id FROM days WHERE value >= 0 AND day <= $cal))
    """,
        params,
    ).fetchall()[0]
    summary = con.execute(
        """
        WITH days AS (
            SELECT customer_id, ts::DATE AS day, sum(amount) AS value FROM transactions
            WHERE ts::DATE <= $end GROUP BY ALL HAVING sum(amount) >= 0
        ),
        cal AS (
            SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY day) AS k FROM days WHERE day <= $cal
        ),
        per_customer AS (
            SELECT customer_id,
                   count(*) - 1 AS frequency,
                   date_diff('day', min(day), max(day)) AS recency,
                   date_diff('day', min(day), $cal::DATE) AS T,
                   coalesce(avg(value) FILTER (WHERE k > 1), 0.0) AS monetary_value
            FROM cal GROUP BY customer_id
        ),
        holdout AS (
            SELECT customer_id, count(*) AS holdout_purchases, avg(value) AS holdout_value
            FROM days WHERE day > $cal GROUP BY customer_id
        )
        SELECT p.*, coalesce(h.holdout_purchases, 0) AS holdout_purchases, h.holdout_value
        FROM per_customer p LEFT JOIN holdout h USING (customer_id)
        ORDER BY customer_id
    """,
        params,
    ).df()
    if summary.empty:
        raise StoreError(
            f"No purchases on or before the calibration end {calibration_end}: the calibration window "
            "is empty. Check --calibration-end and the date column."
        )
    report = SummaryReport(
        customers=len(summary), rows_after_holdout_end=after_end, return_days=return_days, new_in_holdout=new_in_holdout
    )
    return summary.set_index("customer_id"), report


def bgnbd_log_likelihood(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood for (r, alpha, a, b)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    a4 = np.full_like(a3, -np.inf)
    a4[repeat] = np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + tx[repeat])
    return a1 + a2 + np.logaddexp(a3, a4)


def fit_bgnbd(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> BGNBD:
    """Maximum-likelihood BG/NBD. Raises StoreError when there is nothing to fit (no customers or no repeats)."""
    x, tx, big_t = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    if len(x) == 0:
        raise StoreError("BG/NBD: no customers in the calibration window.")
    if not (x > 0).any():
        raise StoreError(
            "BG/NBD: no customer made a repeat purchase in the calibration window, so repeat "
            "behaviour cannot be fitted. Use a longer calibration period."
        )
    # Identical (x, tx, T) triples are fitted once with a weight.
    triples, weights = np.unique(np.column_stack([x, tx, big_t]), axis=0, return_counts=True)
    ux, utx, ut = triples.T

    def objective(log_params: np.ndarray) -> float:
        ll = bgnbd_log_likelihood(np.exp(log_params), ux, utx, ut)
        value = -(weights * ll).sum() / weights.sum()
        return float(value) if np.isfinite(value) else 1e12

    scale = max(float(np.mean(big_t)), 1.0)
    starts = [(1.0, 1.0, 1.0, 1.0), (0.5, scale / 10, 0.8, 2.5), (0.2, scale, 0.5, 5.0), (2.0, scale / 2, 2.0, 1.0)]
    best = run_starts(objective, starts, n_params=4)
    r, alpha, a, b = np.exp(best.x)
    return BGNBD(float(r), float(alpha), float(a), float(b), float(-best.fun), bool(best.success))


def run_starts(objective, starts: list[tuple[float, ...]], n_params: int):
    """L-BFGS-B from each start on log parameters; the best result (Nelder-Mead polish when L-BFGS-B stalls)."""
    bounds = [(-LOG_BOUND, LOG_BOUND)] * n_params
    results = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for start in starts:
            res = minimize(objective, np.log(start), method="L-BFGS-B", bounds=bounds)
            if not res.success:
                res = minimize(
                    objective,
                    res.x,
                    method="Nelder-Mead",
                    bounds=bounds,
                    options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-9},
                )
            results.append(res)
    best = min(results, key=lambda res: res.fun)
    if not np.isfinite(best.fun) or best.fun >= 1e12:
        raise StoreError(
            "The CLV model could not be fitted: the likelihood is not finite at any starting point. "
            "Check the input for extreme values."
        )
    return best


def expected_purchases(m: BGNBD, t: float, frequency, recency, T) -> np.ndarray:
    """Expected purchases in the next ``t`` days for each customer, given their calibration history."""
    x, tx, big_t = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    with np.errstate(all="ignore"):
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + big_t + t))
        first = (a + b + x - 1) / (a - 1)
        second = 1 - np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t))) * hyp
    return first * second * p_alive(m, x, tx, big_t)


def p_alive(m: BGNBD, frequency, recency, T) -> np.ndarray:
    """Probability that each customer is still active at the end of calibration (1 for no repeat purchases)."""
    x, tx, big_t = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    with np.errstate(all="ignore"):
        log_odds = (
            np.log(m.a)
            - np.log(np.maximum(m.b + x - 1, 1e-300))
            + (m.r + x) * (np.log(m.alpha + big_t) - np.log(m.alpha + tx))
        )
        return np.where(x > 0, 1 / (1 + np.exp(np.minimum(log_odds, 700))), 1.0)


def gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray, mx: np.ndarray) -> np.ndarray:
    p, q, v = params
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(mx)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * mx + v)
    )


def fit_gamma_gamma(frequency, monetary_value) -> GammaGamma:
    """Gamma-Gamma on customers with repeat purchases and a positive mean repeat spend (others are not informative)."""
    x, mx = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    keep = (x > 0) & (mx > 0)
    if keep.sum() < 2:
        raise StoreError(
            "Gamma-Gamma needs customers with repeat purchases of positive value; found "
            f"{int(keep.sum())}. Use a longer calibration period."
        )
    x, mx = x[keep], mx[keep]

    def objective(log_params: np.ndarray) -> float:
        value = -gamma_gamma_log_likelihood(np.exp(log_params), x, mx).mean()
        return float(value) if np.isfinite(value) else 1e12

    scale = max(float(np.mean(mx)), 1.0)
    starts = [(1.0, 1.0, 1.0), (5.0, 3.0, scale), (1.0, 5.0, scale * 5), (10.0, 10.0, scale / 2)]
    best = run_starts(objective, starts, n_params=3)
    p, q, v = np.exp(best.x)
    return GammaGamma(float(p), float(q), float(v), float(-best.fun), bool(best.success), int(keep.sum()))


def expected_spend(m: GammaGamma, frequency, monetary_value) -> np.ndarray:
    """Expected value of a customer's future purchase; the population mean p*v/(q-1) for customers without repeat
    purchases (NaN when q <= 1, where that mean does not exist)."""
    x, mx = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    population = m.p * m.v / (m.q - 1) if m.q > 1 else np.nan
    with np.errstate(all="ignore"):
        conditional = m.p * (m.v + x * mx) / (m.p * x + m.q - 1)
    return np.where(x > 0, conditional, population)


def customer_value(bgnbd: BGNBD, gg: GammaGamma, summary: pd.DataFrame, horizon_days: float) -> pd.DataFrame:
    """Per customer: P(alive), expected purchases and expected value (purchases x spend) over the horizon."""
    x, tx, big_t = summary["frequency"], summary["recency"], summary["T"]
    purchases = expected_purchases(bgnbd, horizon_days, x, tx, big_t)
    spend = expected_spend(gg, x, summary["monetary_value"])
    return pd.DataFrame(
        {
            "p_alive": p_alive(bgnbd, x, tx, big_t),
            "expected_purchases": purchases,
            "expected_spend": spend,
            "expected_value": purchases * spend,
        },
        index=summary.index,
    )
