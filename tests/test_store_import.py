"""`kefu store import`: a shop's own CSV/Parquet files with a column mapping, and every bad-input case."""

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from kefu import store
from kefu.errors import StoreError
from kefu.store.importer import TableSource, import_files, load_mapping
from ui.cli import app

PRODUCTS = (
    "sku,name,cost,dept\nA1,Oat milk 1 L,2.49,DAIRY\nB2,Rye bread,3.10,BAKERY\nC3,Coffee beans 500 g,7.99,GROCERY\n"
)
ORDERS = "order_id,customer_id,ordered_at\nO1,alice,2024-03-01 10:00:00\nO2,bob,2024-03-02\nO3,alice,2024-03-05 18:30\n"
ITEMS = "order_id,product_id,quantity,amount\nO1,A1,2,4.98\nO1,B2,1,3.10\nO2,C3,1,7.99\nO3,A1,-1,-2.49\nO3,Z9,1,1.00\n"


@pytest.fixture
def shop(tmp_path):
    (tmp_path / "products.csv").write_text(PRODUCTS)
    (tmp_path / "orders.csv").write_text(ORDERS)
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "mapping.toml").write_text(
        '[products]\nfile = "products.csv"\n[products.columns]\nproduct_id = "sku"\ntitle = "name"\n'
        'price = "cost"\ndepartment = "dept"\n'
        '[orders]\nfile = "orders.csv"\n[order_items]\nfile = "items.csv"\n'
    )
    return tmp_path


def test_import_with_mapping_and_counted_handling(shop, tmp_path):
    target = tmp_path / "store.duckdb"
    summary = import_files(load_mapping(shop / "mapping.toml"), target)
    assert summary["rows"] == {"products": 3, "orders": 3, "order_items": 5}
    assert summary["handled"] == {"returns": 1, "customers_added": 2, "order_items_unknown_product": 1}
    with store.connect(target) as con:
        assert con.execute("SELECT title, price FROM products WHERE product_id='A1'").fetchone() == (
            "Oat milk 1 L",
            2.49,
        )
        assert con.execute("SELECT count(*) FROM order_items WHERE is_return").fetchone()[0] == 1
        assert con.execute("SELECT line_no FROM order_items WHERE order_id='O1' ORDER BY line_no").fetchall() == [
            (1,),
            (2,),
        ]
        assert con.execute("SELECT status FROM orders WHERE order_id='O2'").fetchone()[0] == "completed"
        assert (
            str(con.execute("SELECT ordered_at FROM orders WHERE order_id='O2'").fetchone()[0]) == "2024-03-02 00:00:00"
        )


def test_parquet_files_and_cli(shop, tmp_path, monkeypatch):
    df = pd.DataFrame({"product_id": ["p1", "p2"], "title": ["Tea", "Cocoa"], "price": [1.5, 2.5]})
    df.to_parquet(tmp_path / "p.parquet")
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["store", "import", "--products", str(tmp_path / "p.parquet"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == {"products": 2}
    assert store.info(tmp_path / "data" / "store.duckdb")["tables"]["products"] == 2


def expect_error(sources, target, *fragments):
    with pytest.raises(StoreError) as err:
        import_files(sources, target)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)
    return str(err.value)


def products_from(tmp_path, text, **columns):
    (tmp_path / "bad.csv").write_text(text)
    return {"products": TableSource(tmp_path / "bad.csv", columns)}


def test_missing_and_mistyped_columns(tmp_path):
    t = tmp_path / "s.duckdb"
    expect_error(
        products_from(tmp_path, "sku,name\nA,x\n", product_id="sku"),
        t,
        "bad.csv",
        "required column products.title",
    )
    expect_error(
        products_from(tmp_path, "sku,name\nA,x\n", product_id="SKU", title="name"),
        t,
        "no column 'SKU'",
        "products.product_id",
        "['sku', 'name']",
    )
    expect_error(
        products_from(tmp_path, "product_id,title,price\nA,x,1.0\nB,y,cheap\n"),
        t,
        "bad.csv, row 2 (line 3), column 'price'",
        "cannot read 'cheap' as a number",
    )
    expect_error(products_from(tmp_path, "product_id,title\nA,x\n", colour="title"), t, "unknown store column")


def test_duplicate_ids_name_the_rows(tmp_path):
    msg = expect_error(
        products_from(tmp_path, "product_id,title\nA,x\nB,y\nA,z\n"),
        tmp_path / "s.duckdb",
        "duplicate id 'A'",
        "row 1 (line 2)",
        "row 3 (line 4)",
    )
    assert "column 'product_id'" in msg


def test_unparseable_dates_and_empty_required_values(tmp_path):
    (tmp_path / "p.csv").write_text("product_id,title\nA,x\n")
    (tmp_path / "o.csv").write_text("order_id,customer_id,ordered_at\nO1,c,2024-01-01\nO2,c,31/02/2024\n")
    sources = {"products": TableSource(tmp_path / "p.csv"), "orders": TableSource(tmp_path / "o.csv")}
    expect_error(
        sources,
        tmp_path / "s.duckdb",
        "o.csv, row 2 (line 3), column 'ordered_at'",
        "cannot read '31/02/2024' as a date/time",
    )
    (tmp_path / "o.csv").write_text("order_id,customer_id,ordered_at\nO1,,2024-01-01\n")
    expect_error(sources, tmp_path / "s.duckdb", "row 1 (line 2), column 'customer_id'", "empty value")


def test_empty_files_and_wrong_types_of_file(tmp_path):
    t = tmp_path / "s.duckdb"
    expect_error(products_from(tmp_path, ""), t, "bad.csv", "the file is empty")
    expect_error(products_from(tmp_path, "product_id,title\n"), t, "header but no rows")
    (tmp_path / "p.xlsx").write_text("x")
    expect_error({"products": TableSource(tmp_path / "p.xlsx")}, t, "unsupported file type")
    expect_error({"products": TableSource(tmp_path / "nope.csv")}, t, "file not found")
    expect_error({"orders": TableSource(tmp_path / "p.xlsx")}, t, "at least a products file")


def test_items_of_unknown_orders_are_rejected(shop, tmp_path):
    (shop / "items.csv").write_text(ITEMS + "O9,A1,1,2.49\n")
    expect_error(load_mapping(shop / "mapping.toml"), tmp_path / "s.duckdb", "unknown order 'O9'")


def test_bad_mapping_files(tmp_path):
    (tmp_path / "m.toml").write_text("[produce]\nfile = 'x.csv'\n")
    with pytest.raises(StoreError, match="unknown table"):
        load_mapping(tmp_path / "m.toml")
    (tmp_path / "m.toml").write_text("[products\n")
    with pytest.raises(StoreError, match="Cannot read the mapping"):
        load_mapping(tmp_path / "m.toml")


def test_failed_import_leaves_the_previous_store_intact(shop, demo_store, tmp_path):
    import hashlib

    target = tmp_path / "live.duckdb"
    shutil.copy(demo_store, target)
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    (shop / "items.csv").write_text(ITEMS + "O1,A1,two,1\n")
    expect_error(load_mapping(shop / "mapping.toml"), target, "cannot read 'two' as a number")
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before  # byte-identical
    assert store.info(target)["tables"]["products"] == 92331
    assert not target.with_name("live.duckdb.building").exists()


def test_a_product_without_a_price_is_not_offered(tmp_path):
    (tmp_path / "p.csv").write_text("product_id,title,price\nA,Tea,1.5\nB,Cocoa,\n")
    (tmp_path / "m.toml").write_text('[products]\nfile = "p.csv"\n')
    target = tmp_path / "store.duckdb"
    import_files(load_mapping(tmp_path / "m.toml"), target)
    with store.connect(target) as con:
        assert con.execute("SELECT product_id, in_stock FROM products ORDER BY 1").fetchall() == [
            ("A", True),
            ("B", False),
        ]
    assert store.info(target)["notes"]["products_offered"] == 1
    # a shop that states stock itself keeps its own column
    (tmp_path / "p2.csv").write_text("product_id,title,price,stock\nA,Tea,1.5,false\nB,Cocoa,,true\n")
    (tmp_path / "m2.toml").write_text('[products]\nfile = "p2.csv"\n[products.columns]\nin_stock = "stock"\n')
    import_files(load_mapping(tmp_path / "m2.toml"), target)
    with store.connect(target) as con:
        assert con.execute("SELECT product_id, in_stock FROM products ORDER BY 1").fetchall() == [
            ("A", False),
            ("B", True),
        ]
