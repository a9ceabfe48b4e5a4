"""``kefu recommend predict`` and its file handling: the Reality Check layout read and refused with messages
that name what is wrong, and the command end to end on a slice of Ta-Feng (read from ../shared at run time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommend.baskets import BasketFileError, from_layout, holdout, read_layout, read_users
from ui.cli import app

TAFENG = Path(__file__).resolve().parents[2] / "shared" / "data" / "tafeng_nbr"
if not TAFENG.is_dir():
    TAFENG = Path("/work/shared/data/tafeng_nbr")


def write(path: Path, value) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def test_the_layout_drops_the_markers_and_keeps_basket_order(tmp_path):
    got = read_layout(write(tmp_path / "h.json", {"7": [[-1], [1, 2], [2, 3, 3], [-1]]}))
    assert got == {"7": [["1", "2"], ["2", "3", "3"]]}
    b = from_layout(got)
    assert b.users == ["7"] and b.items == ["1", "2", "3"] and len(b.lines) == 4  # the repeated 3 counts once
    assert sorted(b.lines["time"].unique()) == [-2.0, -1.0]
    history, targets = holdout(b)
    assert targets == {"7": {"2", "3"}} and len(history.lines) == 2 and history.lines["time"].max() == -1.0


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        ("[[1, 2]]", "expected a JSON object"),
        ('{"5": [[-1], 3, [-1]]}', "customer '5' must map to a list of baskets"),
        ('{"5": [[-1], [], [-1]]}', "customer '5', basket 1: expected a non-empty list of item ids"),
        ('{"5": [[-1], [1, null], [-1]]}', "customer '5', basket 1"),
    ],
)
def test_a_bad_history_file_is_refused_naming_what_is_wrong(tmp_path, content, message):
    with pytest.raises(BasketFileError, match=message.replace("(", r"\(")):
        read_layout(write(tmp_path / "h.json", content))


def test_a_missing_file_and_a_bad_users_file_are_named(tmp_path):
    with pytest.raises(BasketFileError, match="No history file at"):
        read_layout(tmp_path / "nope.json")
    with pytest.raises(BasketFileError, match="expected a JSON list of customer ids"):
        read_users(write(tmp_path / "u.json", '"1"'))
    assert read_users(write(tmp_path / "u.json", {"3": [], "4": []})) == ["3", "4"]


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def tafeng_slice(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The first 1,500 Ta-Feng customers' histories and a users file of 300 of them."""
    history = json.loads((TAFENG / "history.json").read_text())
    part = dict(list(history.items())[:1500])
    d = tmp_path_factory.mktemp("tafeng")
    return write(d / "history.json", part), write(d / "users.json", list(part)[:300]), part


def test_predict_end_to_end_on_a_slice_of_tafeng(tafeng_slice, tmp_path):
    history, users, part = tafeng_slice
    out = tmp_path / "pred.json"
    result = cli("recommend", "predict", "--history", str(history), "--users", str(users), "--k", "10",
                 "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    assert list(got) == list(part)[:300]
    assert all(len(items) == 10 and len(set(items)) == 10 for items in got.values())
    known = {str(i) for baskets in part.values() for b in baskets for i in b if i != -1}
    assert all(set(items) <= known for items in got.values())

    # the customer who bought one item most often (in the most baskets) finds it in their list
    def top(user: str) -> tuple[int, str]:
        counts: dict[str, int] = {}
        for basket in part[user]:
            for item in {str(i) for i in basket if i != -1}:
                counts[item] = counts.get(item, 0) + 1
        return max((n, item) for item, n in counts.items())

    loyal = max(got, key=lambda u: top(u)[0])
    assert top(loyal)[0] >= 3 and top(loyal)[1] in got[loyal]


def test_predict_refuses_users_it_does_not_know_and_a_missing_source(tafeng_slice, tmp_path):
    history, _, _ = tafeng_slice
    strangers = write(tmp_path / "users.json", ["no-such-customer"])
    result = cli("recommend", "predict", "--history", str(history), "--users", str(strangers), "--out",
                 str(tmp_path / "o.json"))  # fmt: skip
    assert result.exit_code != 0 and "None of the 1 customers" in str(result.exception)
    result = cli("recommend", "predict", "--users", str(strangers), "--out", str(tmp_path / "o.json"))
    assert "Give exactly one of --history" in str(result.exception)
    result = cli("recommend", "predict", "--store", "x.duckdb", "--users", str(strangers), "--out", "o.json")
    assert "--store needs --as-of" in str(result.exception)


def test_predict_from_the_store_uses_only_orders_before_as_of(demo_store, tmp_path):
    import duckdb

    con = duckdb.connect(str(demo_store), read_only=True)
    sold = "SELECT DISTINCT product_id FROM orders JOIN order_items USING (order_id) WHERE ordered_at < '2017-04-01'"
    before = {r[0] for r in con.execute(sold).fetchall()}
    customers = [r[0] for r in con.execute(
        "SELECT customer_id FROM orders WHERE ordered_at < '2017-04-01' GROUP BY 1 ORDER BY count(*) DESC LIMIT 40"
    ).fetchall()]  # fmt: skip
    con.close()
    users, out = write(tmp_path / "users.json", customers), tmp_path / "pred.json"
    result = cli("recommend", "predict", "--store", str(demo_store), "--as-of", "2017-04-01", "--users", str(users),
                 "--k", "15", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    assert list(got) == customers and all(len(v) == 15 and set(v) <= before for v in got.values())
    result = cli("recommend", "predict", "--store", str(demo_store), "--as-of", "2016-01-01", "--users", str(users),
                 "--out", str(out))  # fmt: skip
    assert "no orders before 2016-01-01" in str(result.exception)
    result = cli("recommend", "predict", "--store", str(demo_store), "--as-of", "April", "--users", str(users),
                 "--out", str(out))  # fmt: skip
    assert "--as-of must be a date like" in str(result.exception)
