"""Spark parity: the same segmentation SQL on DuckDB and on Spark (local mode) gives the same tables.

Integers, strings and timestamps must match exactly, floats within 1e-6. pyspark is the optional extra `scale`
(`bash scripts/setup-scale.sh`, which `make test` runs). One local[2] session serves the module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kefu.settings import Settings
from segmentation.engine import DuckDBEngine
from segmentation.features import compute_features, default_as_of
from tests.test_segmentation_features import tiny_store
from ui.cli import app

pytest.importorskip("pyspark", reason="pyspark is the optional extra scale: run `bash scripts/setup-scale.sh`")

from segmentation.spark_engine import SparkEngine, spark_session, stage_store  # noqa: E402


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("spark"), spark_master="local[2]", spark_shuffle_partitions=3)
    with spark_session(settings) as session:
        # The settings reach the session (later sessions in this process reuse it: only SQL confs change).
        assert session.sparkContext.master == "local[2]" and session.conf.get("spark.sql.shuffle.partitions") == "3"
        yield session


def assert_same_tables(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(duck.columns) == list(spark.columns)
    assert duck.dtypes.astype(str).to_dict() == spark.dtypes.astype(str).to_dict()
    duck = duck.sort_values("customer_id").reset_index(drop=True)
    spark = spark.sort_values("customer_id").reset_index(drop=True)
    assert len(duck) == len(spark)
    for column in duck.columns:
        a, b = duck[column], spark[column]
        if a.dtype.kind == "f":
            assert (a.isna() == b.isna()).all(), column
            assert np.allclose(a.fillna(0), b.fillna(0), rtol=0, atol=1e-6), (column, (a - b).abs().max())
        else:
            assert a.equals(b), (column, duck.loc[a != b, ["customer_id", column]].head(), spark.loc[a != b, column])


def test_demo_store_gives_the_same_tables_on_both_engines(spark, demo_store, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(demo_store, data_dir / "store.duckdb")
    reports = {}
    for engine in ("duckdb", "spark"):
        result = CliRunner().invoke(
            app,
            ["segment", "features", "--engine", engine, "--out", str(tmp_path / engine), "--json"],
            env={"KEFU_DATA_DIR": str(data_dir)},
        )
        assert result.exit_code == 0, result.output
        reports[engine] = json.loads(result.stdout)
    assert reports["duckdb"]["customers"] == reports["spark"]["customers"] == 2377
    assert reports["duckdb"]["rfm"] == reports["spark"]["rfm"]
    assert reports["spark"]["engine"] == "spark" and "stage_store" in reports["spark"]["seconds"]
    for table in ("customer_features", "customer_rfm"):
        duck = pd.read_parquet(tmp_path / "duckdb" / table)
        assert len(list((tmp_path / "spark" / table).glob("part-*.parquet"))) >= 1
        assert_same_tables(duck, pd.read_parquet(tmp_path / "spark" / table))
    features = pd.read_parquet(tmp_path / "spark" / "customer_features")
    assert features["weekend_share"].between(0, 1).all() and 0.2 < features["weekend_share"].mean() < 0.5


def test_hand_worked_store_on_both_engines(spark, tmp_path):
    """Cancelled orders, returns, a product missing from the catalogue, a Saturday evening order, views and carts."""
    con = tiny_store()
    con.execute("INSERT INTO order_items VALUES ('o4', 2, 'unknown', 1, 2.0, 0, 0, 0, FALSE)")
    as_of = default_as_of(con)
    assert compute_features(DuckDBEngine(con), as_of) == 2
    duck = con.execute("SELECT * FROM customer_features").df()
    engine = SparkEngine(spark)
    for table, path in stage_store(con, tmp_path / "staged").items():
        engine.register_parquet(table, path)
    assert compute_features(engine, as_of) == 2
    engine.write_parquet("customer_features", tmp_path / "features")
    on_spark = pd.read_parquet(tmp_path / "features")
    assert_same_tables(duck, on_spark)
    c1 = on_spark.set_index("customer_id").loc["c1"]
    assert c1["weekend_share"] == 0.5 and c1["tenure_days"] == 7 and c1["top_category"] == "TV"


def test_engine_functions_agree(spark):
    """days_between, seconds_between and is_weekend (sql/*_functions.sql) over a week and across midnight."""
    import duckdb

    query = """
        SELECT t, is_weekend(t) AS weekend, days_between(t, TIMESTAMP '2024-01-10 00:00:00') AS days,
               seconds_between(TIMESTAMP '2024-01-03 23:59:30', t) AS seconds
        FROM (VALUES (TIMESTAMP '2024-01-04 00:00:01'), (TIMESTAMP '2024-01-05 12:00:00'),
                     (TIMESTAMP '2024-01-06 23:59:59'), (TIMESTAMP '2024-01-07 00:00:00'),
                     (TIMESTAMP '2024-01-08 09:30:00'), (TIMESTAMP '2024-01-09 17:00:00'),
                     (TIMESTAMP '2024-01-10 06:00:00')) AS v(t)
        ORDER BY t
    """
    on_duckdb = DuckDBEngine(duckdb.connect()).rows(query)
    on_spark = SparkEngine(spark).rows(query)
    assert on_duckdb == on_spark
    assert [row[1] for row in on_spark] == [False, False, True, True, False, False, False]
    assert [row[2] for row in on_spark] == [6, 5, 4, 3, 2, 1, 0] and on_spark[0][3] == 31


def test_spark_failure_is_a_store_error(spark):
    from kefu.errors import StoreError

    with pytest.raises(StoreError, match="Computing broken failed on Spark: .*no_such_table"):
        SparkEngine(spark).create("broken", "SELECT * FROM no_such_table")


def test_parquet_folder_layout_is_the_same(spark, tmp_path):
    """Both engines write OUT/<table>/ folders of part files that pandas reads alike."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 'c1' AS customer_id, 1::BIGINT AS n")
    DuckDBEngine(con).write_parquet("t", tmp_path / "duck")
    engine = SparkEngine(spark)
    engine.register_rows("t", [("customer_id", "STRING"), ("n", "BIGINT")], [("c1", 1)])
    engine.write_parquet("t", tmp_path / "spark")
    assert_same_tables(pd.read_parquet(tmp_path / "duck"), pd.read_parquet(tmp_path / "spark"))
    assert [p.name for p in Path(tmp_path / "duck").iterdir()] == ["part-00000.parquet"]
