"""`kefu segment features` on DuckDB: the Parquet tables, the as-of date, and clear errors (no Spark needed)."""

from __future__ import annotations

import shutil
import sys

import duckdb
import pandas as pd
import pytest

from segmentation.features import build_features
from segmentation.rfm import rfm_from_store


@pytest.fixture(scope="module")
def data_dir(demo_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("feature-tables")
    shutil.copy(demo_store, path / "store.duckdb")
    return path


def kefu(monkeypatch, capsys, data_dir, *args: str) -> tuple[int, str, str]:
    from ui.cli import main

    monkeypatch.setenv("KEFU_DATA_DIR", str(data_dir))
    monkeypatch.setenv("COLUMNS", "300")  # no line breaks inside the messages
    monkeypatch.setattr("sys.argv", ["kefu", "segment", "features", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def test_duckdb_tables_equal_the_fit_tables(monkeypatch, capsys, data_dir, tmp_path):
    code, _, err = kefu(monkeypatch, capsys, data_dir, "--out", str(tmp_path / "out"))
    assert code == 0 and "2377 customers as of 2018-01-02 00:00:00 on duckdb" in err
    con = duckdb.connect(str(shutil.copy(data_dir / "store.duckdb", tmp_path / "copy.duckdb")))
    build_features(con)
    rfm_from_store(con)
    for table in ("customer_features", "customer_rfm"):
        written = pd.read_parquet(tmp_path / "out" / table)
        assert [p.name for p in (tmp_path / "out" / table).iterdir()] == ["part-00000.parquet"]
        fitted = con.execute(f"SELECT * FROM {table} ORDER BY customer_id").df()
        pd.testing.assert_frame_equal(written, fitted, check_exact=False, rtol=0, atol=1e-9)
    # A second run replaces the tables.
    assert kefu(monkeypatch, capsys, data_dir, "--out", str(tmp_path / "out"))[0] == 0


def test_as_of_leaves_out_later_orders(monkeypatch, capsys, data_dir, tmp_path):
    code, out, _ = kefu(monkeypatch, capsys, data_dir, "--as-of", "2017-06-01", "--out", str(tmp_path), "--json")
    assert code == 0, out
    features = pd.read_parquet(tmp_path / "customer_features")
    assert (features["as_of"] == pd.Timestamp("2017-06-01")).all() and features["recency_days"].min() >= 1
    assert 0 < len(features) < 2377 and '"future_orders_excluded"' in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "hadoop"], "--engine must be duckdb or spark, not 'hadoop'"),
        (["--as-of", "June 1st"], "--as-of must be a date like 2017-06-01, got 'June 1st'"),
        (["--as-of", "2010-01-01"], "No customer has an order before 2010-01-01 00:00; pick a later --as-of"),
    ],
)
def test_bad_options_get_a_clear_error(monkeypatch, capsys, data_dir, tmp_path, args, message):
    code, out, err = kefu(monkeypatch, capsys, data_dir, *args, "--out", str(tmp_path))
    assert code == 2 and message in " ".join((out + err).split()) and "Traceback" not in out + err


def test_out_must_not_hold_other_files(monkeypatch, capsys, data_dir, tmp_path):
    (tmp_path / "customer_features").mkdir()
    (tmp_path / "customer_features" / "notes.txt").write_text("mine")
    code, _, err = kefu(monkeypatch, capsys, data_dir, "--out", str(tmp_path))
    assert code == 2 and "holds notes.txt" in " ".join(err.split())
    assert (tmp_path / "customer_features" / "notes.txt").read_text() == "mine"


def test_spark_without_pyspark_says_how_to_install_it(monkeypatch, capsys, data_dir, tmp_path):
    for name in [m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")] + ["pyspark"]:
        monkeypatch.setitem(sys.modules, name, None)  # import pyspark now fails, as where the extra is missing
    code, _, err = kefu(monkeypatch, capsys, data_dir, "--engine", "spark", "--out", str(tmp_path))
    assert code == 2 and "scripts/setup-scale.sh" in " ".join(err.split())
    assert not (tmp_path / "customer_features").exists()
