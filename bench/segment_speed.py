"""Time behaviour features + RFM + clustering on SYNTHETIC scale-ups of the demo store; RFM also in plain pandas.

The data is synthetic (labelled so in the output): each synthetic customer copies a randomly chosen real demo-store
customer (Complete Journey) - their orders, each kept with a fixed probability so the store reaches about
``--lines-per-customer`` order lines per customer (the first order is always kept), their order lines, one purchase
event per line and their coupon redemptions - with times shifted by up to +-12 hours. Order ids are numeric
strings of at most 11 digits, like the real ones. So the distributions of
baskets, spend, timing and departments are the real ones; the customers are not real. Generation runs in DuckDB SQL.

Each measured step runs in its own process so its peak memory (max RSS) is its own:
  features    segmentation.features.build_features on the store file
  rfm         segmentation.rfm.rfm_from_store on the same file
  pandas_rfm  the same RFM (same definitions, same tie-break, same algorithm) in plain pandas, timed after loading
              the two tables (the load is timed separately); its output is checked against the DuckDB result.
              Also timed: the straightforward pandas version that totals every order first (per_order_variant).
  duckdb_tables  `kefu segment features --engine duckdb` (segmentation.feature_tables): features + RFM written as
              Parquet, the same steps as spark_tables on DuckDB.
  spark_tables   `kefu segment features --engine spark`: the same SQL through pyspark (KEFU_SPARK_MASTER, default
              local[2]; KEFU_SPARK_DRIVER_MEMORY), phases timed apart (session start, export of the store to
              Parquet, features, RFM, Parquet write); its tables are compared with duckdb_tables' (integers and
              strings exact, floats within 1e-6). CPU seconds of the JVM (local mode) are sampled apart: on the
              shared host, wall time also counts the moments its processes are held.
  clusters    segmentation.clusters.cluster_store on the features the first step wrote: taste vectors (sparse
              customers x products matrix times the product title embeddings), scaler + taste PCA + k-means with
              k by silhouette and bootstrap ARI on a seeded sample, every customer assigned to its nearest centroid
              and written to customer_clusters. Title embeddings are cached per product (as `kefu segment fit`
              does); embedding titles missing from the cache is timed apart (title_embedding) - it is a one-off
              per product, not per customer. The cache starts from the demo fit's when there is one.
Prints one JSON object, with the machine's load average before and after each size (the host is shared).

    .venv/bin/python bench/segment_speed.py --customers 100000,1000000
    .venv/bin/python bench/segment_speed.py --customers 100000 --steps duckdb_tables,spark_tables
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import psutil

from kefu.embedder import Embedder
from kefu.settings import Settings
from kefu.store import demo as store_demo
from kefu.store import schema_sql
from segmentation import clusters
from segmentation.feature_tables import TABLES, write_feature_tables
from segmentation.features import build_features, default_as_of
from segmentation.rfm import load_rules, rfm_from_store
from segmentation.workspace import segments_dir

REPO = Path(__file__).resolve().parent.parent

GENERATE_SQL = """
ATTACH '{real}' AS real (READ_ONLY);
CREATE TABLE tmpl_customers AS
    SELECT customer_id AS real_customer, row_number() OVER (ORDER BY customer_id) - 1 AS tmpl
    FROM (SELECT DISTINCT customer_id FROM real.orders);
CREATE TABLE tmpl_orders AS
    SELECT c.tmpl, o.order_id AS real_order, o.ordered_at, o.store_id,
           row_number() OVER (PARTITION BY o.customer_id ORDER BY o.ordered_at, o.order_id) = 1 AS is_first,
           row_number() OVER (ORDER BY o.order_id) AS order_rank
    FROM real.orders o JOIN tmpl_customers c ON c.real_customer = o.customer_id;
CREATE TABLE syn_customers AS
    SELECT range AS s, 'syn' || range AS customer_id, hash(range, 'tmpl') % {n_real} AS tmpl,
           to_minutes((hash(range, 'shift') % 1441)::BIGINT - 720) AS shift
    FROM range({n});
CREATE TABLE syn_orders AS
    SELECT c.customer_id, (c.s * {n_orders} + o.order_rank)::VARCHAR AS order_id, o.real_order,
           o.ordered_at + c.shift AS ordered_at,
           o.store_id
    FROM syn_customers c JOIN tmpl_orders o USING (tmpl)
    WHERE o.is_first OR hash(c.s, o.real_order) % 1000000 < {keep_ppm};
INSERT INTO products SELECT * FROM real.products;
INSERT INTO customers (customer_id) SELECT customer_id FROM syn_customers;
INSERT INTO orders SELECT order_id, customer_id, ordered_at, 'completed', store_id FROM syn_orders;
INSERT INTO order_items
    SELECT o.order_id, i.line_no, i.product_id, i.quantity, i.amount, i.retail_disc, i.coupon_disc,
           i.coupon_match_disc, i.is_return
    FROM syn_orders o JOIN real.order_items i ON i.order_id = o.real_order;
INSERT INTO events
    SELECT o.customer_id, o.ordered_at, 'purchase', i.product_id, o.order_id
    FROM syn_orders o JOIN real.order_items i ON i.order_id = o.real_order;
INSERT INTO coupon_redemptions
    SELECT c.customer_id, r.coupon_upc, r.campaign_id, r.redeemed_at
    FROM syn_customers c JOIN tmpl_customers t USING (tmpl) JOIN real.coupon_redemptions r
         ON r.customer_id = t.real_customer;
DROP TABLE syn_orders; DROP TABLE syn_customers; DROP TABLE tmpl_orders; DROP TABLE tmpl_customers;
DETACH real;
"""


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads): with 2 shared cores, wall time depends on the load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generate(db: Path, customers: int, lines_per_customer: float) -> dict:
    real = db.with_name("real.duckdb")
    if not real.exists():
        store_demo.build(store_demo.default_source(), real)
    con = duckdb.connect(str(real), read_only=True)
    n_real, n_orders, real_lines = con.execute(
        "SELECT count(DISTINCT customer_id), count(*), (SELECT count(*) FROM order_items) FROM orders"
    ).fetchall()[0]
    first_lines = con.execute("""
        SELECT count(*) FROM order_items WHERE order_id IN (
            SELECT arg_min(order_id, (ordered_at, order_id)) FROM orders GROUP BY customer_id)""").fetchall()[0][0]
    con.close()
    # Keep probability for non-first orders so that lines per customer matches the target on average.
    keep = min(1.0, max(0.0, (lines_per_customer * n_real - first_lines) / (real_lines - first_lines)))
    start = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute(schema_sql())
    con.execute(
        GENERATE_SQL.format(real=real, n=customers, n_real=n_real, n_orders=n_orders, keep_ppm=round(keep * 1e6))
    )
    con.execute("CHECKPOINT")
    counts = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        for t in ("orders", "order_items", "events", "coupon_redemptions")
    }
    con.close()
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "keep_probability": round(keep, 4),
        **counts,
        "file_mb": round(db.stat().st_size / 2**20, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def step_features(db: Path) -> dict:
    con = duckdb.connect(str(db))
    start, cpu = time.perf_counter(), cpu_seconds()
    rows = build_features(con)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "cpu_seconds": round(cpu_seconds() - cpu, 2),
        "customers": rows,
        "peak_rss_mb": peak_rss_mb(),
    }


def step_rfm(db: Path) -> dict:
    con = duckdb.connect(str(db))
    start, cpu = time.perf_counter(), cpu_seconds()
    report = rfm_from_store(con)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    con.execute("COPY customer_rfm TO '{}' (FORMAT parquet)".format(db.with_name("rfm_duckdb.parquet")))
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "customers": report.customers_scored,
        "segments": report.segments,
        "peak_rss_mb": peak_rss_mb(),
    }


def pandas_rfm(orders, items, as_of, rules):
    """RFM with the definitions and the algorithm of segmentation/rfm.py (store path) in plain pandas."""
    orders = orders[(orders["ordered_at"] < as_of) & (orders["status"] != "cancelled")]
    # Only orders holding a negative line can be returns (negative total).
    with_negative = items[items["order_id"].isin(items.loc[items["amount"] < 0, "order_id"].unique())]
    totals = with_negative.groupby("order_id")["amount"].sum()
    is_return = orders["order_id"].isin(totals.index[totals < 0])
    bought = orders[~is_return]
    spend = items.merge(orders[["order_id", "customer_id"]], on="order_id").groupby("customer_id")["amount"].sum()
    per = pd.DataFrame(
        {
            "recency_days": (
                as_of.normalize() - bought.groupby("customer_id")["ordered_at"].max().dt.normalize()
            ).dt.days,
            "frequency": bought.groupby("customer_id").size(),
        }
    ).reset_index()
    per["monetary"] = per["customer_id"].map(spend).fillna(0.0).round(6)
    return score_frame(per, rules)


def score_frame(per, rules):
    """ntile(5) scores worst-to-best with customer id tie-break, and the segment of (r, f), in numpy."""
    n = len(per)
    for axis, col, ascending in (("r", "recency_days", False), ("f", "frequency", True), ("m", "monetary", True)):
        order = np.lexsort((per["customer_id"].to_numpy(), per[col].to_numpy() if ascending else -per[col].to_numpy()))
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        big, size = n % 5, n // 5  # ntile: the first n % 5 bins hold one more
        per[axis] = (
            np.where(
                position < big * (size + 1), position // (size + 1), big + (position - big * (size + 1)) // max(size, 1)
            )
            + 1
        )
    grid = {
        (r, f): rule.segment
        for rule in rules
        for r in range(rule.r_min, rule.r_max + 1)
        for f in range(rule.f_min, rule.f_max + 1)
    }
    per["segment"] = [grid[k] for k in zip(per["r"], per["f"], strict=True)]
    return per


def pandas_rfm_per_order(orders, items, as_of, rules):
    """The straightforward pandas RFM: every order's total first (groupby order id), then per customer."""
    values = items.groupby("order_id", sort=False)["amount"].sum()
    orders = orders[(orders["ordered_at"] < as_of) & (orders["status"] != "cancelled")]
    orders = orders.assign(value=orders["order_id"].map(values).fillna(0.0))
    bought = orders[orders["value"] >= 0]
    per = pd.DataFrame(
        {
            "recency_days": (
                as_of.normalize() - bought.groupby("customer_id")["ordered_at"].max().dt.normalize()
            ).dt.days,
            "frequency": bought.groupby("customer_id").size(),
        }
    ).reset_index()
    per["monetary"] = per["customer_id"].map(orders.groupby("customer_id")["value"].sum()).round(6)
    return score_frame(per, rules)


def step_pandas_rfm(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    start = time.perf_counter()
    as_of = pd.Timestamp(default_as_of(con))
    orders = con.execute("SELECT order_id, customer_id, ordered_at, status FROM orders").df()
    items = con.execute("SELECT order_id, amount FROM order_items").df()
    con.close()
    load = time.perf_counter() - start
    start, cpu = time.perf_counter(), cpu_seconds()
    per = pandas_rfm(orders, items, as_of, load_rules())
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    start, cpu_naive = time.perf_counter(), cpu_seconds()
    naive = pandas_rfm_per_order(orders, items, as_of, load_rules())
    seconds_naive, cpu_naive = time.perf_counter() - start, cpu_seconds() - cpu_naive
    ours = pd.read_parquet(db.with_name("rfm_duckdb.parquet")).set_index("customer_id").sort_index()
    per = per.set_index("customer_id").sort_index()
    same = (
        len(per) == len(ours)
        and all((per[c] == ours[c]).all() for c in ("recency_days", "frequency", "r", "f", "m", "segment"))
        and bool(((per["monetary"] - ours["monetary"]).abs() < 1e-6).all())
    )
    naive = naive.set_index("customer_id").sort_index()
    naive_same = bool((naive[["r", "f", "m", "segment"]] == ours[["r", "f", "m", "segment"]]).all().all())
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "load_seconds": round(load, 2),
        "customers": len(per),
        "matches_duckdb": same,
        "per_order_variant": {
            "seconds": round(seconds_naive, 2),
            "cpu_seconds": round(cpu_naive, 2),
            "matches_duckdb": naive_same,
        },
        "peak_rss_mb": peak_rss_mb(),
    }


def step_clusters(db: Path) -> dict:
    cache_path = db.with_name("title_embeddings.npz")
    fitted = segments_dir(Settings(data_dir=REPO / ".kefu")) / "title_embeddings.npz"
    if not cache_path.exists() and fitted.is_file():
        shutil.copy(fitted, cache_path)
    cache = clusters.TitleEmbeddingCache(cache_path)
    embedder = Embedder()
    con = duckdb.connect(str(db))
    start = time.perf_counter()
    products = con.execute("""SELECT DISTINCT product_id, title FROM products JOIN order_items USING (product_id)
                              WHERE title IS NOT NULL""").df()
    cached_before = len(cache.vectors)
    cache.embed(products, embedder)
    embedding = {
        "seconds": round(time.perf_counter() - start, 2),
        "titles": len(products),
        "embedded_now": len(cache.vectors) - cached_before,
    }
    features = con.execute("SELECT * FROM customer_features ORDER BY customer_id").df()
    start, cpu = time.perf_counter(), cpu_seconds()
    model = clusters.cluster_store(con, features, embedder, cache)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assigned, k = con.execute("SELECT count(*), count(DISTINCT cluster) FROM customer_clusters").fetchall()[0]
    report = model.report
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "customers": assigned,
        "fit_sample": report["fit_sample"],
        "k": k,
        "silhouette": round(report["silhouette"], 3),
        "silhouette_by_k": {str(a): round(b, 3) for a, b in report["silhouette_by_k"].items()},
        "stability_ari": round(report["stability_ari"], 3),
        "title_embedding": embedding,
        "peak_rss_mb": peak_rss_mb(),
    }


def jvm_cpu_seconds() -> float:
    """User + system CPU time of this process's child processes still running (Spark's JVM in local mode)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def step_duckdb_tables(db: Path) -> dict:
    start, cpu = time.perf_counter(), cpu_seconds()
    report = write_feature_tables(Settings(data_dir=db.parent), "duckdb", db.with_name("tables_duckdb"), store_path=db)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "cpu_seconds": round(cpu_seconds() - cpu, 2),
        "phases": report["seconds"],
        "customers": report["customers"],
        "peak_rss_mb": peak_rss_mb(),
    }


def step_spark_tables(db: Path) -> dict:
    settings = Settings(data_dir=db.parent)
    start, cpu = time.perf_counter(), cpu_seconds()
    jvm_cpu: list[float] = []

    def sample_jvm() -> None:  # the JVM's CPU time just before the session stops (and the JVM exits)
        while not done.wait(0.5):
            jvm_cpu.append(jvm_cpu_seconds())

    done = threading.Event()
    sampler = threading.Thread(target=sample_jvm, daemon=True)
    sampler.start()
    try:
        report = write_feature_tables(settings, "spark", db.with_name("tables_spark"), store_path=db)
    finally:
        done.set()
        sampler.join()
    result = {
        "seconds": round(time.perf_counter() - start, 2),
        "cpu_seconds_python": round(cpu_seconds() - cpu, 2),
        "cpu_seconds_jvm": round(max(jvm_cpu, default=0.0), 2),
        "phases": report["seconds"],
        "customers": report["customers"],
        "spark": {
            "master": settings.spark_master,
            "shuffle_partitions": settings.spark_shuffle_partitions,
            "driver_memory": settings.spark_driver_memory,
        },
    }
    if db.with_name("tables_duckdb").is_dir():
        result["same_tables_as_duckdb"] = same_tables(db.with_name("tables_duckdb"), db.with_name("tables_spark"))
    return result


def same_tables(a: Path, b: Path) -> dict[str, bool]:
    """Per table: same columns, types and rows (integers and strings exact, floats within 1e-6)."""
    verdicts = {}
    for table in TABLES:
        x = pd.read_parquet(a / table).sort_values("customer_id").reset_index(drop=True)
        y = pd.read_parquet(b / table).sort_values("customer_id").reset_index(drop=True)
        same = list(x.columns) == list(y.columns) and len(x) == len(y) and (x.dtypes == y.dtypes).all()
        for column in x.columns if same else []:
            if x[column].dtype.kind == "f":
                same &= bool((x[column].isna() == y[column].isna()).all())
                same &= bool(((x[column] - y[column]).abs().fillna(0) <= 1e-6).all())
            else:
                same &= bool(x[column].equals(y[column]))
        verdicts[table] = bool(same)
    return verdicts


STEPS: dict[str, Callable[[Path], dict]] = {
    "features": step_features,
    "rfm": step_rfm,
    "pandas_rfm": step_pandas_rfm,
    "duckdb_tables": step_duckdb_tables,
    "spark_tables": step_spark_tables,
    "clusters": step_clusters,
}


def run_step(name: str, db: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--step", name, "--db", str(db)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-3:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_size(customers: int, lines_per_customer: float, workdir: Path, steps: list[str]) -> dict:
    db = workdir / f"synthetic_{customers}.duckdb"
    db.unlink(missing_ok=True)
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--step",
            "generate",
            "--db",
            str(db),
            "--customers",
            str(customers),
            "--lines-per-customer",
            str(lines_per_customer),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"customers": customers, "error": done.stderr.strip().splitlines()[-3:]}
    result = {"customers": customers, "generate": json.loads(done.stdout.strip().splitlines()[-1])}
    result["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    for name in steps:
        result[name] = run_step(name, db)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    try:
        features, rfm, pandas = result["features"], result["rfm"], result["pandas_rfm"]
        duck = features["seconds"] + rfm["seconds"]
        result["features_plus_rfm_seconds"] = round(duck, 2)
        if "seconds" in result["clusters"]:
            result["features_plus_rfm_plus_clusters_seconds"] = round(duck + result["clusters"]["seconds"], 2)
        result["ratio_pandas_rfm_over_duckdb_rfm"] = round(pandas["seconds"] / rfm["seconds"], 2)
        result["ratio_pandas_rfm_over_duckdb_features_plus_rfm"] = round(pandas["seconds"] / duck, 2)
        result["cpu_ratio_pandas_rfm_over_duckdb_rfm"] = round(pandas["cpu_seconds"] / rfm["cpu_seconds"], 2)
        result["ratio_pandas_per_order_rfm_over_duckdb_rfm"] = round(
            pandas["per_order_variant"]["seconds"] / rfm["seconds"], 2
        )
    except (KeyError, ZeroDivisionError):
        pass
    with contextlib.suppress(KeyError, ZeroDivisionError):
        result["ratio_spark_over_duckdb_tables"] = round(
            result["spark_tables"]["seconds"] / result["duckdb_tables"]["seconds"], 2
        )
    for path in (db, db.with_name("rfm_duckdb.parquet"), Path(str(db) + ".wal")):  # the title cache is kept
        path.unlink(missing_ok=True)
    for folder in (db.with_name("tables_duckdb"), db.with_name("tables_spark")):
        shutil.rmtree(folder, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="100000,1000000", help="comma-separated synthetic customer counts")
    parser.add_argument("--lines-per-customer", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of: {', '.join(STEPS)}")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "generate":
        print(json.dumps(generate(args.db, int(args.customers), args.lines_per_customer)))
        return
    if args.step:
        print(json.dumps(STEPS[args.step](args.db), default=str))
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        steps = [s for s in args.steps.split(",") if s]
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            parser.error(f"unknown step(s) {unknown}; pick from {list(STEPS)}")
        sizes = [bench_size(int(n), args.lines_per_customer, Path(tmp), steps) for n in args.customers.split(",")]
    print(
        json.dumps(
            {
                "data": "SYNTHETIC scale-up of the real demo store (Complete Journey customers copied with their "
                "orders, lines, events and coupon redemptions; see bench/segment_speed.py)",
                "machine": {"cpus": os.cpu_count()},
                "when": datetime.now().isoformat(timespec="seconds"),
                "targets": {"features_plus_rfm_1m_seconds_under": 60, "speedup_vs_pandas_at_least": 3},
                "sizes": sizes,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
