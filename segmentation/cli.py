"""``kefu segment …``: fit segments, show a customer's profile, reports, RFM for analysts.

Also ``from_transactions``, which ``ui/cli.py`` registers as ``kefu store from-transactions``: it
builds a store from a bare transaction file with ``segmentation.transactions``, which the platform core
(``kefu``) may not import."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kefu.console import console, print_json, settings_of
from kefu.errors import KefuError
from kefu.llm.client import LLM
from segmentation.feature_tables import EngineName, write_feature_tables
from segmentation.pipeline import fit_all, fit_is_current, rename_personas
from segmentation.profiles import ProfileStore
from segmentation.report import write_html
from segmentation.rfm import load_rules, rfm_from_transactions
from segmentation.transactions import TransactionColumns, load_transactions, store_from_transactions

app = typer.Typer(no_args_is_help=True)


@app.command("rfm")
def rfm_command(
    transactions: Path = typer.Option(..., help="CSV or Parquet file, one row per transaction (or order line)."),
    customer_col: str = typer.Option(..., help="Customer id column."),
    date_col: str = typer.Option(..., help="Transaction date column."),
    amount_col: str = typer.Option(..., help="Amount column (negative = return: netted and counted)."),
    as_of: str = typer.Option(..., help="As-of date YYYY-MM-DD (exclusive: rows on or after it are left out)."),
    out: Path = typer.Option(..., help="Output CSV: one row per customer."),
    order_col: str | None = typer.Option(None, help="Order id column; without it every row is one order."),
    drop_duplicates: bool = typer.Option(
        False, help="Drop rows identical in every column (default: keep them as repeat purchases)."
    ),
    rules: Path | None = typer.Option(None, help="Segment rule CSV (segment,r_min,r_max,f_min,f_max)."),
    date_format: str | None = typer.Option(None, help="strptime format of the date column, e.g. %Y%m%d."),
) -> None:
    """RFM scores (1-5, 5 = best) and named segments per customer of a transaction file."""
    try:
        as_of_day = datetime.strptime(as_of, "%Y-%m-%d")
    except ValueError:
        raise KefuError(f"--as-of must be a date like 1998-07-01, got {as_of!r}.") from None
    segment_rules = load_rules(rules)
    con = duckdb.connect()
    loaded = load_transactions(
        con,
        transactions,
        TransactionColumns(customer_col, date_col, amount_col, order_col),
        date_format=date_format,
        drop_duplicates=drop_duplicates,
    )
    report = rfm_from_transactions(con, as_of_day, segment_rules)
    out.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY customer_rfm TO '{str(out).replace(chr(39), chr(39) * 2)}' (HEADER, DELIMITER ',')")
    if report.future_rows_excluded:
        console.print(
            f"[yellow]warning:[/yellow] {report.future_rows_excluded} row(s) dated on or after {as_of} were left out."
        )
    if report.customers_only_returns:
        console.print(
            f"[yellow]warning:[/yellow] {report.customers_only_returns} customer(s) only returned goods "
            "before the as-of date and were not scored."
        )
    kept = "dropped" if drop_duplicates else "kept as repeat purchases"
    console.print(
        f"{loaded.rows} rows, {loaded.duplicate_rows} duplicate rows ({kept}), "
        f"{report.return_orders} return order(s) netted, {loaded.zero_amount_rows} zero-amount rows."
    )
    console.print(f"{report.customers_scored} customers scored -> {out}")
    for name, count in report.segments.items():
        console.print(f"  {name:<20} {count:>8}")


@app.command("features")
def features_command(
    ctx: typer.Context,
    out: Path = typer.Option(
        ..., help="Folder for the tables: OUT/customer_features/ and OUT/customer_rfm/ (Parquet)."
    ),
    engine: str = typer.Option("duckdb", help="duckdb (in process) or spark (pyspark; KEFU_SPARK_MASTER)."),
    as_of: str | None = typer.Option(
        None, help="As-of date YYYY-MM-DD (exclusive); default: the day after the store's last order."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Behaviour features and RFM of the store as Parquet, computed on DuckDB or Spark with the same SQL."""
    if engine not in ("duckdb", "spark"):
        raise typer.BadParameter(f"--engine must be duckdb or spark, not {engine!r}")
    as_of_day = None
    if as_of is not None:
        try:
            as_of_day = datetime.strptime(as_of, "%Y-%m-%d")
        except ValueError:
            raise KefuError(f"--as-of must be a date like 2017-06-01, got {as_of!r}.") from None
    engine_name: EngineName = "spark" if engine == "spark" else "duckdb"
    report = write_feature_tables(settings_of(ctx), engine_name, out, as_of_day)
    if json_out:
        print_json(report)
        return
    console.print(
        f"{report['customers']} customers as of {report['as_of']} on {report['engine']} "
        f"({report['rfm']['customers_scored']} RFM-scored) -> {out}"
    )
    for name, seconds in report["seconds"].items():
        console.print(f"  {name:<12} {seconds:>8.2f} s")


@app.command("fit")
def fit_command(
    ctx: typer.Context,
    transformer: bool = typer.Option(True, help="Also fine-tune MiniLM for propensity (minutes on CPU)."),
    epochs: int = typer.Option(1, min=1, max=5, help="Fine-tuning epochs."),
    llm: bool = typer.Option(True, help="Let the LLM name personas (template names when it is down)."),
    json_out: bool = typer.Option(False, "--json", help="Print the fit report as JSON."),
    clusters: str | None = typer.Option(
        None,
        "--clusters",
        help="kmeans (k by silhouette) or gmm (Gaussian "
        "mixture, k by BIC); default: KEFU_SEGMENT_CLUSTER_METHOD or kmeans.",
    ),
    if_stale: bool = typer.Option(
        False,
        "--if-stale",
        help="Only fit when there is no fit, or one made by an older version of Kefu (`make demo` uses this).",
    ),
) -> None:
    """Re-fit everything from the store: features, RFM, clusters, personas, CLV, propensity, profiles."""
    settings = settings_of(ctx)
    if clusters is not None:
        if clusters not in ("kmeans", "gmm"):
            raise typer.BadParameter(f"--clusters must be kmeans or gmm, not {clusters!r}")
        settings = settings.model_copy(update={"segment_cluster_method": clusters})
    if if_stale and fit_is_current(settings):
        console.print("Segments are fitted and current; `kefu segment fit` re-fits them.")
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("starting", total=None)
        report = fit_all(
            settings,
            llm=LLM.from_settings(settings) if llm else None,
            with_transformer=transformer,
            epochs=epochs,
            progress=lambda step: bar.update(task, description=step),
        )
    if json_out:
        print_json(report)
        return
    c, p = report["clusters"], report["propensity"]
    console.print(
        f"{report['customers']} customers as of {report['as_of']}; {c['method']} k={c['k']} "
        f"(silhouette {c['silhouette']:.3f}, stability ARI {c['stability_ari']:.3f})"
    )
    if c.get("k_at_range_edge"):
        console.print(
            f"[yellow]note:[/yellow] k={c['k']} is at the edge of the range tried; the data may want "
            "fewer or more clusters than the range allows."
        )
    for persona in report["personas"]:
        console.print(f"  cluster {persona['cluster']}: {persona['name']} ({persona['size']}, {persona['source']})")
    for name in ("gbm", "minilm"):
        if name in p:
            console.print(f"  propensity {name}: ROC-AUC {p[name]['roc_auc']}, PR-AUC {p[name]['pr_auc']}")
    clv = {k: v for k, v in report["clv"].items() if k != "params"}  # parameters: in segments/fit.json
    console.print(f"  serving {p['served']}; CLV: {clv}")


@app.command("show")
def show_command(
    ctx: typer.Context,
    customer_id: str = typer.Argument(..., help="Customer id."),
    json_out: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
) -> None:
    """One customer's profile: features, RFM, segment, cluster persona, CLV, propensity, top categories."""
    profile = ProfileStore.load(settings_of(ctx)).get(customer_id)
    if json_out:
        print_json(profile.model_dump(mode="json"))
        return
    table = Table(title=f"Customer {customer_id}", show_header=False)
    for key, value in profile.model_dump(exclude={"features"}).items():
        table.add_row(key, str(value))
    for key, value in profile.features.items():
        table.add_row(f"  {key}", f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command("report")
def report_command(
    ctx: typer.Context,
    html: Path = typer.Option(..., "--html", help="Output HTML file (self-contained, works offline)."),
) -> None:
    """An HTML report: segment sizes, RFM heat map, cluster map, CLV distribution, persona cards."""
    result = write_html(settings_of(ctx), html)
    console.print(f"Wrote {result['path']} ({result['bytes'] // 1024} KiB): {', '.join(result['sections'])}")


@app.command("personas")
def personas_command(
    ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print the persona cards as JSON.")
) -> None:
    """Name the fitted clusters again with the LLM (template names where it is down or its text is rejected)."""
    settings = settings_of(ctx)
    cards = rename_personas(settings, LLM.from_settings(settings))
    if json_out:
        print_json([c.model_dump() for c in cards])
        return
    for card in cards:
        console.print(f"cluster {card.cluster} ({card.source}): {card.name} — {card.description}")
        if card.note:
            console.print(f"  [yellow]{card.note}[/yellow]")


# -- kefu store from-transactions: a store from a transaction file (see the module docstring) -------------
def from_transactions(
    ctx: typer.Context,
    transactions: Path = typer.Argument(..., help="CSV or Parquet file, one row per transaction (or order line)."),
    customer_col: str = typer.Option(..., help="Customer id column."),
    date_col: str = typer.Option(..., help="Transaction date column."),
    amount_col: str = typer.Option(..., help="Amount column (negative = a return)."),
    order_col: str | None = typer.Option(None, help="Order id column; without it every row is one order."),
    date_format: str | None = typer.Option(None, help="strptime format of the date column, e.g. %Y%m%d."),
    drop_duplicates: bool = typer.Option(
        False, help="Drop rows identical in every column (default: keep them as repeat purchases)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Replace the store with one built from a bare transaction file (no catalogue), e.g. to run
    `kefu segment fit` on it. A failed build leaves the old store intact."""
    settings = settings_of(ctx)
    report = store_from_transactions(
        transactions,
        TransactionColumns(customer_col, date_col, amount_col, order_col),
        settings.store_path,
        date_format=date_format,
        drop_duplicates=drop_duplicates,
    )
    if as_json:
        print_json({"store": str(settings.store_path), **report.as_dict()})
        return
    kept = "dropped" if drop_duplicates else "kept as repeat purchases"
    console.print(
        f"Built {settings.store_path} from {report.rows} rows: {report.customers} customers, "
        f"{report.duplicate_rows} duplicate rows ({kept}), {report.negative_amount_rows} returns, "
        f"{report.zero_amount_rows} zero-amount rows. Products are not known ('unspecified')."
    )
