"""The portable segmentation SQL on Spark (``segmentation.engine.SqlEngine``), for stores one machine outgrows.

pyspark is the optional extra ``scale`` (``bash scripts/setup-scale.sh``, or ``pip install -e '.[scale]'``); it is
imported only here, when a Spark engine is asked for. The session runs on ``KEFU_SPARK_MASTER`` (default
``local[2]``: a JVM in this process, no cluster). Timestamps are TIMESTAMP_NTZ (wall-clock times, as in the store)
and the session time zone is UTC, so no time zone shifts an order's hour or day.

The store's tables reach Spark as Parquet: ``stage_store`` exports them from DuckDB (``KEFU_SPARK_STAGING_DIR``,
default a temporary folder; on a cluster, a path every executor can read) and ``SparkEngine.register_parquet``
names them as temporary views, so the same SQL reads ``orders``, ``order_items`` ... on both engines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from kefu.errors import KefuError, StoreError
from kefu.settings import Settings
from segmentation.engine import PARAMETER, replace_folder, sql_file, statements, used_parameters

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The store tables the segmentation SQL reads.
STAGED_TABLES = ("orders", "order_items", "products", "events", "coupon_redemptions")

INSTALL_HINT = (
    "pyspark is not installed; it is the optional extra `scale`: run `bash scripts/setup-scale.sh` "
    "(or `pip install -e '.[scale]'`), or use --engine duckdb."
)


def spark_error(exc: Exception) -> str:
    """The first line of a Spark error (the rest is a JVM stack trace)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class SparkEngine:
    """The portable SQL on a SparkSession: each table a cached temporary view."""

    name = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.frames: dict[str, DataFrame] = {}
        for statement in statements(sql_file("spark_functions.sql")):
            spark.sql(statement)

    def sql(self, query: str, params: Mapping[str, Any] | None) -> DataFrame:
        """``query`` with its ``$name`` parameters bound as Spark's ``:name`` markers (Spark analyses it now)."""
        args = used_parameters(query, params)
        return self.spark.sql(PARAMETER.sub(r":\1", query), args=args or None)

    def create(
        self, table: str, query: str, params: Mapping[str, Any] | None = None, *, temporary: bool = True
    ) -> None:
        from pyspark.errors import PySparkException

        try:
            frame = self.sql(query, params).cache()
            frame.count()  # compute it now, once: later steps and the Parquet writer read the cache
        except PySparkException as exc:
            raise StoreError(f"Computing {table} failed on Spark: {spark_error(exc)}") from exc
        self.drop(table)
        frame.createOrReplaceTempView(table)
        self.frames[table] = frame

    def rows(self, query: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        from pyspark.errors import PySparkException

        try:
            return [tuple(row) for row in self.sql(query, params).collect()]
        except PySparkException as exc:
            raise StoreError(f"A segmentation query failed on Spark: {spark_error(exc)}") from exc

    def register_rows(self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
        schema = ", ".join(f"{c} {t}" for c, t in columns)
        self.spark.createDataFrame(list(rows), schema=schema).createOrReplaceTempView(table)

    def register_parquet(self, table: str, path: Path | str) -> None:
        self.spark.read.parquet(str(path)).createOrReplaceTempView(table)

    def drop(self, table: str) -> None:
        frame = self.frames.pop(table, None)
        if frame is not None:
            frame.unpersist()
        self.spark.catalog.dropTempView(table)

    def write_parquet(self, table: str, folder: Path) -> None:
        replace_folder(folder)
        self.spark.table(table).write.mode("overwrite").parquet(str(folder))


def stage_store(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, Path]:
    """Export the store tables the SQL reads from ``con`` into ``folder`` as Parquet, one file per table."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for table in STAGED_TABLES:
        path = folder / f"{table}.parquet"
        target = str(path).replace("'", "''")
        try:
            con.execute(f"COPY (SELECT * FROM {table}) TO '{target}' (FORMAT parquet)")
        except duckdb.Error as exc:
            raise StoreError(f"Exporting the store's {table} for Spark failed: {exc}") from exc
        paths[table] = path
    return paths


@contextlib.contextmanager
def spark_session(settings: Settings) -> Iterator[SparkSession]:
    """A SparkSession on ``settings.spark_master`` (one already running in this process is reused, not stopped)."""
    try:
        from pyspark.errors import PySparkException
        from pyspark.sql import SparkSession
    except ImportError:
        raise KefuError(INSTALL_HINT) from None
    running = SparkSession.getActiveSession()
    try:
        spark = (
            SparkSession.builder.master(settings.spark_master)
            .appName("kefu-segmentation")
            .config("spark.driver.memory", settings.spark_driver_memory)
            .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
            .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
    except (PySparkException, OSError) as exc:
        raise KefuError(
            f"Spark did not start on {settings.spark_master!r}: {spark_error(exc)}. It needs a Java 17+ runtime "
            "(`java -version`; Debian: apt-get install openjdk-17-jre-headless) and, for a cluster, a reachable "
            "KEFU_SPARK_MASTER."
        ) from exc
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        if running is None:
            spark.stop()
