"""``kefu index`` (and ``kefu index tune``), ``kefu search``, ``kefu similar`` and ``kefu bought-together``: build
the product indexes from the store, tune the embedder on judged queries, and query them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from kefu.console import console, print_json, settings_of
from kefu.store import connect
from retrieval import related
from retrieval.hybrid import ProductSearch, SearchQueryError
from retrieval.indexer import index_store
from retrieval.rerank import profile_from_store


def register(app: typer.Typer) -> None:
    """Add the retrieval commands to the root ``kefu`` app."""
    index_app = typer.Typer(invoke_without_command=True, add_completion=False)
    index_app.callback()(index)
    index_app.command("tune")(tune)
    app.add_typer(index_app, name="index")
    app.command("search")(search)
    app.command("similar")(similar)
    app.command("bought-together")(bought_together)


def index(
    ctx: typer.Context,
    rebuild: bool = typer.Option(False, "--rebuild", help="Drop both indexes and embed every product again."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Build or update the product indexes (Chroma + BM25) from the store; only changed products are embedded.
    `kefu index tune` fine-tunes the embedding model on judged queries."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_of(ctx)
    console.print(f"Indexing products from {settings.store_path} …")
    report = index_store(settings, rebuild=rebuild, progress=True)
    if as_json:
        print_json(report)
    else:
        console.print(
            f"{report['products']:,} products indexed: {report['embedded']:,} embedded "
            f"({report['distinct_texts_embedded']:,} distinct texts), {report['metadata_updated']:,} metadata "
            f"updates, {report['deleted']:,} deleted, {report['seconds']} s."
        )


def tune(
    ctx: typer.Context,
    beir: Path = typer.Option(..., "--beir", help="BEIR folder of judged queries (corpus, queries, qrels/)."),
    out: Path = typer.Option(None, "--out", help="Where to write the tuned model (default: models/minilm-tuned)."),
    epochs: int = typer.Option(1, "--epochs", min=1),
    holdout: float = typer.Option(0.3, "--holdout", help="Fraction of the queries held out (never trained on)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the held-out split and of the pair sample."),
    min_gain: float = typer.Option(1.0, "--min-gain", help="Train on judgements with at least this gain."),
    max_pairs: int = typer.Option(
        12_000, "--max-pairs", min=0, help="Subsample the training pairs to this many (0: all; ~1 min per 1,000)."
    ),
    hard_negatives: bool = typer.Option(
        False, "--hard-negatives/--no-hard-negatives", help="Add each query's judged low-grade products as negatives."
    ),
    lr: float = typer.Option(3e-5, "--lr", help="Learning rate (AdamW, linear warm-up and decay)."),
    base: Path = typer.Option(None, "--base", help="Model to start from (default: the packaged all-MiniLM-L6-v2)."),
    fit: bool = typer.Option(
        True, "--fit/--no-fit", "--fit-alpha/--no-fit-alpha", help="Fit the fusion weights with the tuned model."
    ),
    index_dir: Path = typer.Option(
        None, "--index-dir", help="Keep the fit's corpus index here (`kefu eval retrieval --index-dir` reuses it)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Fine-tune the embedding model on the training part of judged queries; index with it via KEFU_EMBED_MODEL."""
    from retrieval.tune import tune_command_run  # deferred: torch and sentence-transformers load on use

    out = out or settings_of(ctx).models_dir / "minilm-tuned"
    console.print(f"Fine-tuning on the training queries of {beir} (holding out {holdout:.0%}) …")
    report = tune_command_run(beir, out, base=base, epochs=epochs, holdout=holdout, seed=seed, min_gain=min_gain,
                              max_pairs=max_pairs, hard_negatives=hard_negatives, lr=lr, fit=fit,
                              index_dir=index_dir)  # fmt: skip
    if as_json:
        print_json(report)
    else:
        console.print(
            f"Tuned model written to {out}: {report['pairs']:,} pairs ({report['hard_negatives']:,} with a hard "
            f"negative), {report['steps']} steps, loss {report['loss_first_tenth']} -> {report['loss_last_tenth']}, "
            f"fusion weights {report.get('fusion_weights', 'not fitted')}. Use it with KEFU_EMBED_MODEL={out} and "
            "`kefu index`."
        )


def search(
    ctx: typer.Context,
    query: str = typer.Argument("", help="What to look for; empty browses the filtered catalogue."),
    min_price: float = typer.Option(None, "--min-price"),
    max_price: float = typer.Option(None, "--max-price"),
    department: list[str] = typer.Option([], "--department", help="Repeatable."),
    category: list[str] = typer.Option([], "--category", help="Repeatable."),
    brand: list[str] = typer.Option([], "--brand", help="Repeatable (demo: National, Private)."),
    exclude_brand: list[str] = typer.Option([], "--exclude-brand"),
    in_stock: bool = typer.Option(False, "--in-stock", help="Only products in stock."),
    customer: str = typer.Option(None, "--customer", help="Re-rank for this customer id."),
    system: str = typer.Option("hybrid", "--system", help="hybrid, bm25 or dense."),
    k: int = typer.Option(10, "-k", help="How many results."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Search the product index with hard filters and optional personal re-ranking."""
    settings = settings_of(ctx)
    if system not in ("hybrid", "bm25", "dense"):
        raise SearchQueryError(f"--system must be hybrid, bm25 or dense, not {system!r}.")
    filters = {
        "min_price": min_price,
        "max_price": max_price,
        "departments": department,
        "categories": category,
        "brands": brand,
        "exclude_brands": exclude_brand,
        "in_stock": True if in_stock else None,
    }
    profile = _profile(settings, customer) if customer else None
    response = ProductSearch.open(settings).search(query, filters, k=k, customer=profile, system=system)
    if as_json:
        print_json(response.model_dump())
        return
    for note in response.warnings:
        console.print(f"[yellow]{note}[/yellow]")
    for word, used in response.corrections.items():
        console.print(f"[dim]read '{word}' as {', '.join(used)}[/dim]")
    _print_results(response.results)


def similar(
    ctx: typer.Context,
    product_id: str = typer.Argument(..., help="Product id."),
    k: int = typer.Option(10, "-k"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Products whose descriptions are closest in meaning to the given one."""
    results = related.similar_items(ProductSearch.open(settings_of(ctx)), product_id, k=k)
    if as_json:
        print_json([r.model_dump() for r in results])
    else:
        _print_results(results)


def bought_together(
    ctx: typer.Context,
    product_id: str = typer.Argument(..., help="Product id."),
    k: int = typer.Option(10, "-k"),
    min_support: int = typer.Option(2, "--min-support", help="Baskets that must hold both products."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Products most often in the same baskets as the given one."""
    with connect(settings_of(ctx).store_path) as con:
        rows = related.bought_together(con, product_id, k=k, min_support=min_support)
    if as_json:
        print_json([r.model_dump() for r in rows])
        return
    if not rows:
        console.print(f"No product shares at least {min_support} baskets with {product_id}.")
    for r in rows:
        console.print(f"{r.product_id:>10}  {r.title}  support {r.support}, confidence {r.confidence:.2f}")


def _profile(settings, customer_id: str):
    with connect(settings.store_path) as con:
        return profile_from_store(con, customer_id)


def _print_results(results) -> None:
    if not results:
        console.print("No products match.")
        return
    table = Table("#", "id", "title", "price", "department", "why")
    for i, r in enumerate(results, 1):
        price = "" if r.price is None else f"{r.price:.2f}"
        table.add_row(str(i), r.product_id, r.title, price, r.department or "", "; ".join(x.detail for x in r.reasons))
    console.print(table)
