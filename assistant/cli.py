"""The ``kefu`` command. Sub-commands are grouped by package; each group lives beside its package."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from assistant.errors import KefuError
from assistant.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Kefu: a self-hosted AI shopping assistant.")
console = Console(stderr=True)


@app.callback()
def _root(ctx: typer.Context) -> None:
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        raise KefuError(f"Invalid settings (KEFU_* environment or kefu.toml): {exc}") from exc


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@app.command()
def serve(ctx: typer.Context, start_llm: bool = typer.Option(True, help="Start vLLM when none is running.")) -> None:
    """Serve the shopper chat page and the HTTP API (/v1/chat), starting vLLM unless one is running."""
    from assistant import vllm_server

    settings = settings_of(ctx)
    started = None
    if start_llm and not settings.llm_is_external and not vllm_server.is_healthy(settings.llm_base_url):
        from assistant.cli_llm import start_with_progress

        started = start_with_progress(settings, detach=False)
    try:
        run_web(settings)
    finally:
        if started is not None:
            console.print("Stopping vLLM…")
            vllm_server.stop(settings)


def run_web(settings: Settings) -> None:
    """The FastAPI app with the Gradio page mounted at /; without a product index, the plain chat page only."""
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    from ui.chat import build

    try:
        from assistant.api import create_app
        from assistant.factory import build_assistant

        assistant = build_assistant(settings)
        app = create_app(assistant)
    except KefuError as exc:
        console.print(f"[yellow]Assistant unavailable ({exc}); serving the plain model chat page.[/yellow]")
        assistant, app = None, FastAPI(title="Kefu")
    app = gr.mount_gradio_app(app, build(settings, assistant), path="/")
    console.print(f"Kefu is at http://{settings.ui_host}:{settings.ui_port}/  (API: /v1/chat, /docs)")
    uvicorn.run(app, host=settings.ui_host, port=settings.ui_port, log_level="warning")


def _register() -> None:
    from assistant.cli_llm import app as llm_app
    from assistant.cli_store import app as store_app

    app.add_typer(llm_app, name="llm", help="Prepare, serve and check the LLM.")
    app.add_typer(store_app, name="store", help="Build, import and inspect the shop store.")

    from assistant.cli_intents import app as intents_app

    app.add_typer(intents_app, name="intents", help="Train and try the fast intent classifier.")

    from assistant.cli_chat import chat, token
    from eval.cli import app as eval_app
    from retrieval.cli import register as register_retrieval
    from segmentation.cli import app as segment_app

    app.command()(chat)
    app.command()(token)
    register_retrieval(app)
    app.add_typer(segment_app, name="segment", help="Customer segments, RFM, CLV, propensity, profiles.")
    app.add_typer(eval_app, name="eval", help="Offline evaluation (prints JSON with --json).")


_register()


def main() -> None:
    try:
        app()
    except KefuError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
