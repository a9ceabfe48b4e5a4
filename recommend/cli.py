"""``kefu recommend …``: predict next baskets for an outside scorer, and fit the shop's cached recommender."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer

from kefu.console import console, print_json, settings_of
from kefu.errors import KefuError
from recommend.baskets import BasketFileError, from_layout, read_layout, read_users
from recommend.model import Recommender
from recommend.store import fit_and_save, fit_store, history_config, is_current

app = typer.Typer(no_args_is_help=True)


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise KefuError(f"--as-of must be a date like 2017-10-01, got {text!r}.") from None


def predict(
    history: Path | None, store: Path | None, as_of: str | None, users_path: Path, k: int
) -> dict[str, list[str]]:
    """Each listed customer's top ``k`` items (item or product ids), from the history file or the store."""
    users = read_users(users_path)
    if not users:
        raise BasketFileError(f"{users_path} lists no customers.")
    if (history is None) == (store is None):
        raise KefuError("Give exactly one of --history FILE.json or --store STORE.duckdb (with --as-of).")
    if history is not None:
        if as_of is not None:
            raise KefuError("--as-of is for --store; a history file is predicted from all its baskets.")
        model = Recommender.fit(from_layout(read_layout(history, "history")), history_config())
    else:
        if as_of is None:
            raise KefuError("--store needs --as-of YYYY-MM-DD: the orders strictly before it are the history.")
        model = fit_store(store, _day(as_of))
    unknown = [u for u in users if not model.knows(u)]
    if len(unknown) == len(users):
        where = history or store
        raise BasketFileError(f"None of the {len(users)} customers in {users_path} has a purchase in {where} "
                              f"(e.g. {unknown[0]!r}); is it the right users file?")  # fmt: skip
    if unknown:
        console.print(f"[yellow]warning:[/yellow] {len(unknown)} customer(s) have no history (e.g. {unknown[0]!r}); "
                      "they get the most popular items.")  # fmt: skip
    return {u: [item for item, _ in ranked] for u, ranked in model.rank(users, k).items()}


@app.command("predict")
def predict_command(
    users: Path = typer.Option(..., "--users", help="JSON list of customer ids (or an object keyed by them)."),
    out: Path = typer.Option(..., "--out", help='Where to write {"customer": [ranked item ids]} (JSON).'),
    k: int = typer.Option(20, "--k", min=1, max=500, help="Items per customer."),
    history: Path | None = typer.Option(None, help='Reality Check history: {"customer": [[-1], basket, …, [-1]]}.'),
    store: Path | None = typer.Option(None, help="A Kefu store (DuckDB): predict from its own orders."),
    as_of: str | None = typer.Option(None, help="With --store: use the orders strictly before this date."),
) -> None:
    """Predict each customer's next basket: every item they could buy, ranked (no display policy applied)."""
    ranked = predict(history, store, as_of, users, k)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(ranked))
    console.print(f"{len(ranked)} customers, top {k} items each -> {out}")


@app.command("fit")
def fit_command(
    ctx: typer.Context,
    if_stale: bool = typer.Option(False, "--if-stale", help="Only fit when the cached fit is missing or older."),
    json_out: bool = typer.Option(False, "--json", help="Print what was fitted as JSON."),
) -> None:
    """Fit the shop's recommender on every order in the store and cache it for the assistant."""
    settings = settings_of(ctx)
    if if_stale and is_current(settings):
        console.print("The recommender is fitted and current; `kefu recommend fit` re-fits it.")
        return
    meta = fit_and_save(settings)
    if json_out:
        print_json(meta)
        return
    console.print(f"Recommender fitted on {meta['customers']} customers, {meta['items']} items as of {meta['as_of']}.")
