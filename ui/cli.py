"""The ``kefu`` command: builds the one Settings object and gathers every package's sub-app.

Each package owns its commands (``kefu/llm/cli.py``, ``kefu/store/cli.py``, ``retrieval/cli.py``,
``segmentation/cli.py``, ``assistant/understanding/cli.py``, ``eval/cli.py``); the interfaces a person uses
directly (``serve``, ``chat``, ``token``) live here in ``ui/``.
"""

from __future__ import annotations

import typer

from assistant.understanding.cli import app as intents_app
from assistant.understanding.cli import tune as tune_command
from eval.cli import app as eval_app
from kefu.console import build_settings, console, settings_of
from kefu.errors import KefuError
from kefu.llm import server as vllm_server
from kefu.llm.cli import app as llm_app
from kefu.llm.cli import start_with_progress, wait_with_progress
from kefu.store.cli import app as store_app
from recommend.cli import app as recommend_app
from retrieval.cli import register as register_retrieval
from segmentation.cli import app as segment_app
from segmentation.cli import from_transactions
from ui.auth import Tokens
from ui.terminal import chat, token
from ui.web import run_web

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Kefu: a self-hosted AI shopping assistant.")


app.callback()(build_settings)


@app.command()
def serve(
    ctx: typer.Context,
    start_llm: bool = typer.Option(True, help="Start vLLM when none is running."),
    demo: bool = typer.Option(False, "--demo", help="Demo mode: a customer picker, open staff pages. Never public."),
    stop_llm: bool = typer.Option(
        False, "--stop-llm", help="Stop the managed vLLM on exit even when it was already running (`make demo`)."
    ),
) -> None:
    """Serve the chat page, the copilot, the dashboard and the HTTP API on one port, starting vLLM if needed
    (or waiting for the one `kefu llm serve --background` launched)."""
    settings = settings_of(ctx)
    if demo:
        settings = settings.model_copy(update={"demo": True})
    Tokens.from_settings(settings)  # no KEFU_AUTH_SECRET outside demo mode: say so before starting anything
    started = None
    if start_llm and not settings.llm_is_external and not vllm_server.is_healthy(settings.llm_base_url):
        if vllm_server.starting(settings) is not None:  # launched by `kefu llm serve --background`
            wait_with_progress(settings)
        else:
            started = start_with_progress(settings, detach=False)
    if stop_llm and not settings.llm_is_external:
        started = vllm_server.read_info(settings)
    try:
        run_web(settings)
    finally:
        if started is not None:
            console.print("Stopping vLLM…")
            vllm_server.stop(settings)


llm_app.command("tune")(tune_command)
app.add_typer(llm_app, name="llm", help="Prepare, tune, serve and check the LLM.")
store_app.command("from-transactions")(from_transactions)  # a store built by segmentation code: registered here
app.add_typer(store_app, name="store", help="Build, import and inspect the shop store.")
app.add_typer(intents_app, name="intents", help="Train and try the fast intent classifier.")
app.command()(chat)
app.command()(token)
register_retrieval(app)
app.add_typer(segment_app, name="segment", help="Customer segments, RFM, CLV, propensity, profiles.")
app.add_typer(recommend_app, name="recommend", help="Next-basket recommendations: predict, fit.")
app.add_typer(eval_app, name="eval", help="Offline evaluation (prints JSON with --json).")


def main() -> None:
    try:
        app()
    except KefuError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
