"""``kefu store …``: build the demo store, import a shop's own files, inspect the store."""

from __future__ import annotations

from pathlib import Path

import typer

from assistant import store, store_demo, store_import
from assistant.cli import console, print_json, settings_of

app = typer.Typer(no_args_is_help=True)


@app.command()
def build(
    ctx: typer.Context,
    source: Path = typer.Option(None, help="Complete Journey folder (default: data/completejourney)."),
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing when a store exists."),
) -> None:
    """Build the demo store from dunnhumby's Complete Journey (CC0)."""
    settings = settings_of(ctx)
    if if_missing and settings.store_path.is_file():
        console.print(f"Store exists: {settings.store_path}")
        return
    with console.status("Building the demo store…"):
        store_demo.build(source or store_demo.default_source(), settings.store_path)
    _print_counts(store.info(settings.store_path))


@app.command("import")
def import_(
    ctx: typer.Context,
    mapping: Path = typer.Option(None, help="TOML mapping: per table a file and store column = source column."),
    products: Path = typer.Option(None, help="Products file (.csv or .parquet) with store column names."),
    customers: Path = typer.Option(None),
    orders: Path = typer.Option(None),
    order_items: Path = typer.Option(None),
    events: Path = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Replace the store with a shop's own CSV/Parquet files. A failed import leaves the old store intact."""
    settings = settings_of(ctx)
    sources = store_import.load_mapping(mapping) if mapping else {}
    given = {
        "products": products,
        "customers": customers,
        "orders": orders,
        "order_items": order_items,
        "events": events,
    }
    for table, path in given.items():
        if path is not None:
            sources[table] = store_import.TableSource(path, sources.get(table, store_import.TableSource(path)).columns)
    summary = store_import.import_files(sources, settings.store_path)
    if as_json:
        print_json(summary)
    else:
        console.print(f"Imported into {settings.store_path}: {summary['rows']}; handled: {summary['handled']}")


@app.command("from-transactions")
def from_transactions(
    ctx: typer.Context,
    transactions: Path = typer.Argument(..., help="CSV or Parquet file, one row per transaction (or order line)."),
    customer_col: str = typer.Option(..., help="Customer id column."),
    date_col: str = typer.Option(..., help="Transaction date column."),
    amount_col: str = typer.Option(..., help="Amount column (negative = a return)."),
    order_col: str | None = typer.Option(None, help="Order id column; without it every row is one order."),
    date_format: str | None = typer.Option(None, help="strptime format of the date column, e.g. %Y%m%d."),
    drop_duplicates: bool = typer.Option(False, help="Drop rows identical in every column (default: keep them "
                                         "as repeat purchases)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Replace the store with one built from a bare transaction file (no catalogue), e.g. to run
    `kefu segment fit` on it. A failed build leaves the old store intact."""
    from segmentation.transactions import TransactionColumns, store_from_transactions

    settings = settings_of(ctx)
    report = store_from_transactions(transactions, TransactionColumns(customer_col, date_col, amount_col, order_col),
                                     settings.store_path, date_format=date_format, drop_duplicates=drop_duplicates)
    if as_json:
        print_json({"store": str(settings.store_path), **report.as_dict()})
        return
    kept = "dropped" if drop_duplicates else "kept as repeat purchases"
    console.print(f"Built {settings.store_path} from {report.rows} rows: {report.customers} customers, "
                  f"{report.duplicate_rows} duplicate rows ({kept}), {report.negative_amount_rows} returns, "
                  f"{report.zero_amount_rows} zero-amount rows. Products are not known ('unspecified').")


@app.command()
def info(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Row counts per table and notes on the store."""
    details = store.info(settings_of(ctx).store_path)
    print_json(details) if as_json else _print_counts(details)


def _print_counts(details: dict) -> None:
    for table, n in details["tables"].items():
        console.print(f"  {table:<20} {n:>9,}")
    for note, n in details["notes"].items():
        console.print(f"  ({note.replace('_', ' ')}: {n:,})")
