"""``kefu segment features``: the behaviour features and the RFM table of the store as Parquet, on DuckDB or Spark.

Both engines run the same SQL (``segmentation/sql/``, see ``segmentation.engine``) and write the same tables:
``OUT/customer_features/`` and ``OUT/customer_rfm/``, each a folder of Parquet files (one file from DuckDB, Spark's
part files from Spark; ``pandas.read_parquet(folder)`` or ``spark.read.parquet(folder)`` read either). The store
stays read-only; with Spark its tables are first exported to Parquet (``segmentation.spark_engine.stage_store``).
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

from kefu.settings import Settings
from segmentation.engine import DuckDBEngine, SqlEngine
from segmentation.features import compute_features, default_as_of
from segmentation.rfm import load_rules, store_rfm
from segmentation.workspace import workspace

EngineName = Literal["duckdb", "spark"]
TABLES = ("customer_features", "customer_rfm")


def write_feature_tables(
    settings: Settings,
    engine: EngineName,
    out: Path,
    as_of: datetime | None = None,
    store_path: Path | None = None,
) -> dict:
    """Compute features and RFM on ``engine`` as of ``as_of`` (default: the day after the last order) into ``out``;
    returns a report (rows, segments, where the tables are, seconds per phase)."""
    seconds: dict[str, float] = {}
    with workspace(store_path or settings.store_path) as con:
        as_of = as_of or default_as_of(con)
        if engine == "duckdb":
            return run_steps(DuckDBEngine(con), as_of, out, seconds)
        from segmentation.spark_engine import SparkEngine, spark_session, stage_store

        start = time.perf_counter()
        with spark_session(settings) as spark:
            seconds["session"] = round(time.perf_counter() - start, 2)
            staging = settings.spark_staging_dir
            if staging is not None:
                staging.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix="kefu-spark-", dir=staging) as folder:
                start = time.perf_counter()
                paths = stage_store(con, Path(folder))
                seconds["stage_store"] = round(time.perf_counter() - start, 2)
                spark_engine = SparkEngine(spark)
                for table, path in paths.items():
                    spark_engine.register_parquet(table, path)
                return run_steps(spark_engine, as_of, out, seconds)


def run_steps(engine: SqlEngine, as_of: datetime, out: Path, seconds: dict[str, float]) -> dict:
    start = time.perf_counter()
    customers = compute_features(engine, as_of)
    seconds["features"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    rfm = store_rfm(engine, as_of, load_rules())
    seconds["rfm"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    tables = {}
    for table in TABLES:
        engine.write_parquet(table, out / table)
        tables[table] = str(out / table)
    seconds["write"] = round(time.perf_counter() - start, 2)
    return {
        "engine": engine.name,
        "as_of": as_of.isoformat(sep=" "),
        "customers": customers,
        "rfm": {
            "customers_scored": rfm.customers_scored,
            "customers_only_returns": rfm.customers_only_returns,
            "future_orders_excluded": rfm.future_rows_excluded,
            "segments": rfm.segments,
        },
        "tables": tables,
        "seconds": seconds,
    }
