"""``kefu store …``: build the demo store, import a shop's own files, inspect the store.

``kefu store from-transactions`` is added to this app by ``segmentation.cli``: it validates the file with
``segmentation.transactions``, and the platform core imports no package above it."""

from __future__ import annotations

from pathlib import Path

import typer

from kefu import store
from kefu.console import console, print_json, settings_of
from kefu.store import demo as store_demo
from kefu.store import importer as store_import

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
