"""The web server: the FastAPI API with the Gradio chat page mounted at ``/``, on one port."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from assistant.factory import build_assistant
from kefu.console import console
from kefu.errors import KefuError
from kefu.settings import Settings


def create_web_app(settings: Settings) -> FastAPI:
    """API + chat page; without a product index (or store), the plain model chat page only."""
    import gradio as gr  # deferred: gradio takes seconds to import and the CLI's other commands never need it

    from ui.api import create_app
    from ui.chat import build

    try:
        assistant = build_assistant(settings)
        app = create_app(assistant, settings)
    except KefuError as exc:
        console.print(f"[yellow]Assistant unavailable ({exc}); serving the plain model chat page.[/yellow]")
        assistant, app = None, FastAPI(title="Kefu")
    return gr.mount_gradio_app(app, build(settings, assistant), path="/")


def run_web(settings: Settings) -> None:
    app = create_web_app(settings)
    console.print(f"Kefu is at http://{settings.ui_host}:{settings.ui_port}/  (API: /v1/chat, /docs)")
    uvicorn.run(app, host=settings.ui_host, port=settings.ui_port, log_level="warning")
