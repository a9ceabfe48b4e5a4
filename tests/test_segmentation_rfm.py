"""RFM: exact match with an independent pandas reference on real CDNOW, tie-safe bins, rules, bad input, the CLI."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kefu.errors import StoreError
from segmentation.rfm import load_rules, rfm_from_store, rfm_from_transactions, score_edges, score_value
from segmentation.transactions import TransactionColumns, load_transactions
from ui.cli import app

CDNOW = Path(__file__).resolve().parent.parent / "data" / "cdnow" / "cdnow_master.csv"  # real CDNOW (MIT)
COLS = TransactionColumns("customer_id", "date", "amount")

# The default rule table written out cell by cell (R rows 5..1, F columns 1..5), independently of the CSV.
GRID = {
    5: ["New", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalist", "Potential Loyalist", "Loyal", "Loyal"],
    3: ["About to Sleep", "About to Sleep", "Need Attention", "Loyal", "Loyal"],
    2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
}


def reference_rfm(tx: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Plain pandas, one row = one order: quintiles by splitting the worst-to-best order into 5 near-equal parts."""
    tx = tx[tx["date"] < as_of]
    bought = tx[tx["amount"] >= 0]
    out = pd.DataFrame(
        {
            "recency_days": (as_of - bought.groupby("customer_id")["date"].max()).dt.days,
            "frequency": bought.groupby("customer_id").size(),
        }
    )
    out["monetary"] = tx.groupby("customer_id")["amount"].sum().round(6)
    out = out.reset_index()
    for axis, col, worst_first in (("r", "recency_days", False), ("f", "frequency", True), ("m", "monetary", True)):
        order = out.sort_values([col, "customer_id"], ascending=[worst_first, True]).index.to_numpy()
        scores = np.empty(len(out), dtype=int)
        for k, part in enumerate(np.array_split(order, 5), start=1):
            scores[part] = k
        out[axis] = scores
    out["segment"] = [GRID[r][f - 1] for r, f in zip(out["r"], out["f"], strict=True)]
    return out.set_index("customer_id").sort_index()


@pytest.fixture(scope="module")
def cdnow_rfm():
    con = duckdb.connect()
    load_transactions(con, CDNOW, COLS)
    report = rfm_from_transactions(con, datetime(1998, 7, 1), load_rules())
    ours = con.sql("SELECT * FROM customer_rfm").df().set_index("customer_id")
    return con, report, ours


def test_cdnow_matches_independent_reference(cdnow_rfm):
    _, report, ours = cdnow_rfm
    tx = pd.read_csv(CDNOW, dtype={"customer_id": str}, parse_dates=["date"])
    ref = reference_rfm(tx, pd.Timestamp("1998-07-01"))
    assert len(ours) == len(ref) == 23_570 == report.customers_scored
    for col in ("recency_days", "frequency", "r", "f", "m", "segment"):
        assert (ours[col] == ref[col]).all(), col
    assert np.allclose(ours["monetary"], ref["monetary"], atol=1e-9)
    # The CDNOW file holds 255 exact duplicate rows; they are repeat purchases by default.
    assert ours["frequency"].sum() == 69_659
    # Bins survive CDNOW's heavy ties (about half the customers bought once): 5 equal bins per axis.
    for axis in "rfm":
        assert sorted(ours[axis].value_counts().tolist()) == [4714] * 5
    assert sum(report.segments.values()) == 23_570


def test_score_edges_place_known_customers(cdnow_rfm):
    con, _, ours = cdnow_rfm
    edges = score_edges(con)
    # A value strictly better than every bin's best goes to 5; the worst possible value to 1.
    assert score_value("r", 0, edges) == 5 and score_value("r", 10_000, edges) == 1
    assert score_value("f", 1_000, edges) == 5 and score_value("m", -1.0, edges) == 1
    # Customers whose value is untied land where the batch put them.
    tops = ours[ours["m"] == 5]
    assert score_value("m", float(tops["monetary"].max()), edges) == 5


def write_csv(tmp_path: Path, rows: list[tuple], header: str = "cust,day,amt") -> Path:
    path = tmp_path / "tx.csv"
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def run_rfm(path: Path, as_of: str = "2024-03-01", columns: TransactionColumns | None = None, **kwargs):
    con = duckdb.connect()
    loaded = load_transactions(con, path, columns or TransactionColumns("cust", "day", "amt"), **kwargs)
    report = rfm_from_transactions(con, datetime.fromisoformat(as_of), load_rules())
    return loaded, report, con.sql("SELECT * FROM customer_rfm").df().set_index("customer_id")


def test_tie_heavy_input_still_gives_five_bins(tmp_path):
    # 23 customers with identical behaviour: every axis fully tied.
    path = write_csv(tmp_path, [(f"c{i:02d}", "2024-02-01", 10) for i in range(23)])
    _, _, out = run_rfm(path)
    for axis in "rfm":
        assert sorted(out[axis].value_counts().tolist()) == [4, 4, 5, 5, 5]
    assert out["r"].loc["c00"] == 1 and out["f"].loc["c00"] == 1  # ties broken by customer id, worst first


def test_fewer_than_five_customers_is_an_error(tmp_path):
    path = write_csv(tmp_path, [("a", "2024-02-01", 1), ("b", "2024-02-01", 2)])
    with pytest.raises(StoreError, match="at least 5 customers"):
        run_rfm(path)


def test_returns_zero_amounts_duplicates_and_future_rows(tmp_path):
    rows = [
        ("a", "2024-01-01", 10),
        ("a", "2024-01-01", 10),  # identical rows: two purchases
        ("a", "2024-02-10", -4),  # a return: netted, not a purchase
        ("b", "2024-02-20", 0),  # zero amount: an order
        ("c", "2024-01-05", 5),
        ("d", "2024-01-06", 6),
        ("e", "2024-01-07", 7),
        ("f", "2024-01-08", -3),  # only a return: not scored, counted
        ("e", "2024-03-05", 100),
    ]  # after as-of: counted, left out
    loaded, report, out = run_rfm(write_csv(tmp_path, rows))
    assert (loaded.duplicate_rows, loaded.negative_amount_rows, loaded.zero_amount_rows) == (1, 2, 1)
    assert report.future_rows_excluded == 1 and report.return_orders == 2 and report.customers_only_returns == 1
    assert "f" not in out.index and len(out) == 5
    assert out.loc["a", ["frequency", "monetary", "recency_days", "returns"]].tolist() == [2, 16.0, 60, 1]
    assert out.loc["b", ["frequency", "monetary", "recency_days"]].tolist() == [1, 0.0, 10]
    assert out.loc["e", "monetary"] == 7

    _, _, dropped = run_rfm(write_csv(tmp_path, rows), drop_duplicates=True)
    assert dropped.loc["a", ["frequency", "monetary"]].tolist() == [1, 6.0]


def test_order_column_groups_lines(tmp_path):
    rows = [("a", "o1", "2024-01-01", 3), ("a", "o1", "2024-01-01", 4), ("a", "o2", "2024-02-01", 5)]
    rows += [(c, f"o{c}", "2024-01-15", 1) for c in "bcde"]
    path = write_csv(tmp_path, rows, header="cust,order,day,amt")
    _, _, out = run_rfm(path, columns=TransactionColumns("cust", "day", "amt", order="order"))
    assert out.loc["a", ["frequency", "monetary"]].tolist() == [2, 12.0]
    clash_rows = [("a", "o1", "2024-01-01", 3), ("b", "o1", "2024-01-01", 4)]
    clash = write_csv(tmp_path, clash_rows, header="cust,order,day,amt")
    with pytest.raises(StoreError, match="order 'o1'.*more than one customer"):
        run_rfm(clash, columns=TransactionColumns("cust", "day", "amt", order="order"))


@pytest.mark.parametrize(
    ("rows", "columns", "kwargs", "message"),
    [
        ([("a", "2024-01-01", 1)], TransactionColumns("customer", "day", "amt"), {}, "no column 'customer'"),
        (
            [("a", "2024-01-01", 1), ("b", "01/02/2024", 2)],
            None,
            {},
            r"column 'day' cannot be parsed.*row 2 \(line 3\)",
        ),
        ([("a", "20240101", 1)], None, {"date_format": "%Y-%m-%d"}, "with format '%Y-%m-%d'"),
        ([("a", "2024-01-01", "1,5")], None, {}, "column 'amt' is not a number"),
        ([("", "2024-01-01", 1)], None, {}, "column 'cust' is empty in 1 row"),
    ],
)
def test_bad_input_names_column_and_row(tmp_path, rows, columns, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text("cust,day,amt\n" + "\n".join(",".join(f'"{v}"' for v in r) for r in rows) + "\n")
    with pytest.raises(StoreError, match=message):
        run_rfm(path, columns=columns, **kwargs)


def test_date_format_option(tmp_path):
    path = write_csv(tmp_path, [(c, "20240115", 1) for c in "abcde"])
    _, _, out = run_rfm(path, date_format="%Y%m%d")
    assert (out["recency_days"] == 46).all()


def test_rule_file_checks(tmp_path):
    assert len(load_rules()) == 11
    gap = tmp_path / "gap.csv"
    gap.write_text("segment,r_min,r_max,f_min,f_max\nEveryone,1,5,1,4\n")
    with pytest.raises(StoreError, match=r"R=1,F=5 is in no rule"):
        load_rules(gap)
    overlap = tmp_path / "overlap.csv"
    overlap.write_text("segment,r_min,r_max,f_min,f_max\nA,1,5,1,5\nB,5,5,5,5\n")
    with pytest.raises(StoreError, match="R=5,F=5 is in A and B"):
        load_rules(overlap)
    bad = tmp_path / "bad.csv"
    bad.write_text("segment,r_min,r_max,f_min\nA,1,5,1\n")
    with pytest.raises(StoreError, match="lacks column"):
        load_rules(bad)


def test_custom_rules_through_the_cli(tmp_path):
    rules = tmp_path / "two.csv"
    rules.write_text("segment,r_min,r_max,f_min,f_max\nRecent,4,5,1,5\nOlder,1,3,1,5\n")
    out = tmp_path / "rfm.csv"
    result = CliRunner().invoke(
        app,
        [
            "segment",
            "rfm",
            "--transactions",
            str(CDNOW),
            "--customer-col",
            "customer_id",
            "--date-col",
            "date",
            "--amount-col",
            "amount",
            "--as-of",
            "1998-01-01",
            "--out",
            str(out),
            "--rules",
            str(rules),
        ],
    )
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out, dtype={"customer_id": str})
    assert list(df.columns) == [
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
        "r",
        "f",
        "m",
        "segment",
        "returns",
    ]
    assert set(df["segment"]) == {"Recent", "Older"}
    assert (df.loc[df["segment"] == "Recent", "r"] >= 4).all()
    assert "row(s) dated on or after 1998-01-01 were left out" in result.output


def test_cli_reports_missing_column_without_traceback(tmp_path, monkeypatch, capsys):
    from ui.cli import main

    monkeypatch.setattr(
        "sys.argv",
        [
            "kefu",
            "segment",
            "rfm",
            "--transactions",
            str(CDNOW),
            "--customer-col",
            "cust",
            "--date-col",
            "date",
            "--amount-col",
            "amount",
            "--as-of",
            "1998-07-01",
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "no column 'cust'" in err and "Traceback" not in err


def test_store_rfm_on_demo_store(demo_store, tmp_path):
    path = tmp_path / "store.duckdb"
    shutil.copy(demo_store, path)
    con = duckdb.connect(str(path))
    report = rfm_from_store(con)
    out = con.sql("SELECT * FROM customer_rfm").df()
    assert report.customers_scored == len(out) == 2377 and report.future_rows_excluded == 0
    assert out["segment"].notna().all() and set(out["segment"]) <= {rule.segment for rule in load_rules()}
    # The same net spend as the features table computes.
    from segmentation.features import build_features

    build_features(con)
    joined = con.sql(
        "SELECT r.monetary AS a, f.monetary AS b, r.frequency AS fa, f.frequency AS fb, "
        "r.recency_days AS ra, f.recency_days AS rb FROM customer_rfm r JOIN customer_features f "
        "USING (customer_id)"
    ).df()
    assert len(joined) == 2377 and np.allclose(joined["a"], joined["b"])
    assert (joined["fa"] == joined["fb"]).all() and (joined["ra"] == joined["rb"]).all()


def test_parquet_input_gives_the_same_scores(tmp_path, cdnow_rfm):
    _, _, ours = cdnow_rfm
    parquet = tmp_path / "cdnow.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{CDNOW}', types={{'customer_id': 'VARCHAR'}})) TO '{parquet}'")
    con = duckdb.connect()
    load_transactions(con, parquet, COLS)
    rfm_from_transactions(con, datetime(1998, 7, 1), load_rules())
    again = con.sql("SELECT * FROM customer_rfm").df().set_index("customer_id")
    assert again[["r", "f", "m", "segment"]].equals(ours[["r", "f", "m", "segment"]])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"cust,day,amt\n", "has a header but no transaction rows"),
        (b"cust,day,amt\na,2024-01-01,1\nb,2024-01-02,2,5,6\n", "not a well-formed CSV: CSV Error on Line: 3"),
        (bytes(range(256)) * 8, "Cannot read"),
    ],
)
def test_malformed_files_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "tx.csv"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=message):
        run_rfm(path)
    with pytest.raises(StoreError, match="No transaction file"):
        run_rfm(tmp_path / "missing.csv")


def test_store_and_file_paths_agree_on_returns(tmp_path):
    from kefu.store import schema_sql

    con = duckdb.connect()
    con.execute(schema_sql())
    orders = [
        ("o1", "a", "2024-01-05"),
        ("o2", "a", "2024-02-01"),
        ("o3", "a", "2024-02-10"),
        ("o4", "b", "2024-01-20"),
        ("o5", "c", "2024-02-25"),
        ("o6", "d", "2024-01-02"),
        ("o7", "e", "2024-02-03"),
        ("o8", "f", "2024-02-04"),
        ("o9", "g", "2024-01-09"),
        ("o10", "b", "2024-02-05"),
    ]
    lines = [
        ("o1", 1, 20.0),
        ("o1", 2, 5.0),
        ("o2", 1, -8.0),  # o2: a return order
        ("o3", 1, 10.0),
        ("o3", 2, -4.0),  # o3: a purchase with a returned line, net 6
        ("o4", 1, 3.0),
        ("o5", 1, 0.0),
        ("o6", 1, 7.5),
        ("o7", 1, 1.0),
        ("o8", 1, 2.0),
        ("o9", 1, -5.0),  # g only returned
        ("o10", 1, 4.0),
    ]
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, 'completed', NULL)", orders)
    con.execute("INSERT INTO orders VALUES ('o11', 'b', '2024-02-06', 'cancelled', NULL)")
    con.executemany(
        "INSERT INTO order_items VALUES (?, ?, 'p', 1, ?, 0, 0, 0, ?)",
        [(o, n, amount, amount < 0) for o, n, amount in lines] + [("o11", 1, 99.0, False)],
    )
    report = rfm_from_store(con, datetime(2024, 3, 1))
    from_store = con.sql("SELECT * FROM customer_rfm").df().set_index("customer_id")

    day = {o: d for o, _, d in orders}
    owner = {o: c for o, c, _ in orders}
    path = write_csv(tmp_path, [(owner[o], o, day[o], amount) for o, _, amount in lines], header="cust,order,day,amt")
    _, file_report, from_file = run_rfm(path, columns=TransactionColumns("cust", "day", "amt", order="order"))
    assert from_store.equals(from_file)
    assert report.customers_only_returns == file_report.customers_only_returns == 1
    assert report.return_orders == 2 and "g" not in from_store.index
    assert from_store.loc["a", ["frequency", "monetary", "returns", "recency_days"]].tolist() == [2, 23.0, 1, 20]
    assert from_store.loc["b", ["frequency", "monetary"]].tolist() == [2, 7.0]  # the cancelled order is left out
