"""The web server: one FastAPI app on one port (loopback by default) with the API (``/v1/…``), the shopper's
chat page (``/``), the support agents' copilot (``/copilot``), the analysts' segments dashboard (``/dashboard``)
and the embeddable widget (``/widget.js``, ``ui/widget.py``). The two staff pages sit behind ``KEFU_AGENT_KEY``
(entered once at ``/staff``, then a signed cookie), checked here for every request under their paths, Gradio's
own API calls included; in demo mode they are open. Without a key and outside demo mode they are off.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import quote

import uvicorn
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from assistant.factory import build_assistant
from assistant.loop import Assistant
from kefu.console import console
from kefu.errors import KefuError
from kefu.settings import Settings
from ui.auth import STAFF_COOKIE, STAFF_TTL_S, Tokens, agent_key_ok
from ui.hub import Hub
from ui.limits import BodyLimit, ShopperLimits

STAFF_PATHS = ("/copilot", "/dashboard")


@dataclass
class Server:
    """What the pages share: settings, the assistant (None with a reason when it cannot be built), the hub."""

    settings: Settings
    assistant: Assistant | None
    unavailable: str | None
    hub: Hub
    tokens: Tokens
    limits: ShopperLimits


def build_server(settings: Settings, assistant: Assistant | None = None) -> Server:
    tokens = Tokens.from_settings(settings)  # no secret outside demo mode: refuse to start (ConfigError)
    unavailable = None
    if assistant is None:
        try:
            assistant = build_assistant(settings)
        except KefuError as exc:
            unavailable = str(exc)
    hub = Hub.from_settings(settings)  # this process's memory, or Redis shared by every worker
    return Server(settings, assistant, unavailable, hub, tokens, ShopperLimits(settings))


def create_web_app(settings: Settings, assistant: Assistant | None = None, server: Server | None = None) -> FastAPI:
    """The whole app; ``server`` (from ``build_server``) when the caller wants to reach its hub, e.g. in tests."""
    import gradio as gr  # deferred: gradio takes seconds to import and the CLI's other commands never need it

    from ui.api import create_app
    from ui.chat import CSS as CHAT_CSS
    from ui.chat import build_chat
    from ui.copilot import CSS as COPILOT_CSS
    from ui.copilot import build_copilot
    from ui.dashboard import build_dashboard
    from ui.widget import add_widget, embed_head

    server = server or build_server(settings, assistant)
    app = FastAPI(title="Kefu", version="0.1.0")
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.state.server = server  # the in-process tests reach the hub through it
    if server.assistant is not None:
        create_app(server.assistant, settings, server.hub, app, server.limits)
    _staff_gate(app, server)
    add_widget(app, server)  # /widget.js, POST /v1/tokens, and who may frame which page
    gr.mount_gradio_app(app, build_copilot(server), path="/copilot", css=COPILOT_CSS)
    gr.mount_gradio_app(app, build_dashboard(server), path="/dashboard")
    return gr.mount_gradio_app(app, build_chat(server), path="/", css=CHAT_CSS, head=embed_head())


def _staff_gate(app: FastAPI, server: Server) -> None:
    settings, tokens = server.settings, server.tokens

    @app.middleware("http")
    async def staff_only(request: Request, call_next):
        path = request.url.path
        if settings.demo or not path.startswith(STAFF_PATHS):
            return await call_next(request)
        if not settings.agent_key:
            off = "<p>Set <code>KEFU_AGENT_KEY</code> and restart <code>kefu serve</code> to open them.</p>"
            return HTMLResponse(_page("Staff pages are off", off), 404)
        if tokens.is_staff(request.cookies.get(STAFF_COOKIE)):
            return await call_next(request)
        if request.method == "GET" and path.rstrip("/") in STAFF_PATHS:
            return RedirectResponse(f"/staff?next={quote(path)}", 303)
        return JSONResponse({"detail": "Sign in at /staff with the agent key."}, 401)

    @app.get("/staff", response_class=HTMLResponse)
    def staff_form(next: str = "/copilot", error: str = "") -> str:
        target = next if next.startswith(STAFF_PATHS) else "/copilot"
        note = '<p class="err">That is not the agent key.</p>' if error else ""
        return _page("Staff sign-in", f"""{note}<form method="post" action="/staff">
            <input type="hidden" name="next" value="{html.escape(target)}">
            <label>Agent key <input type="password" name="key" id="agent-key" autofocus></label>
            <button type="submit" id="staff-sign-in">Open</button></form>""")  # fmt: skip

    @app.post(
        "/staff",
        response_class=RedirectResponse,
        status_code=303,
        responses={303: {"description": "To the staff page, signed in; or back to the form with an error"}},
    )
    def staff_sign_in(key: str = Form(""), next: str = Form("/copilot")) -> Response:
        target = next if next.startswith(STAFF_PATHS) else "/copilot"
        if not agent_key_ok(settings, key):
            return RedirectResponse(f"/staff?next={quote(target)}&error=1", 303)
        response = RedirectResponse(target, 303)
        response.set_cookie(STAFF_COOKIE, tokens.staff_cookie(), max_age=STAFF_TTL_S, httponly=True, samesite="strict")
        return response

    @app.get("/health")
    def health() -> dict:
        return {"ok": True, "assistant": server.assistant is not None, "unavailable": server.unavailable}

    for path in STAFF_PATHS:
        app.add_api_route(path, lambda path=path: RedirectResponse(path + "/", 307), include_in_schema=False)


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>Kefu · {html.escape(title)}</title><style>body{{font-family:system-ui;max-width:28rem;"
            f"margin:4rem auto;padding:0 1rem}}.err{{color:#b00}}input{{padding:.4rem}}</style></head>"
            f"<body><h2>{html.escape(title)}</h2>{body}</body></html>")  # fmt: skip


def run_web(settings: Settings) -> None:
    app = create_web_app(settings)
    base = f"http://{settings.ui_host}:{settings.ui_port}"
    if settings.demo:
        console.print("[yellow]Demo mode: anyone who can open these pages can pick a demo customer and open "
                      "the staff pages. Never expose it beyond this machine.[/yellow]")  # fmt: skip
    console.print(f"Shopper chat:   {base}/")
    console.print(f"Agent copilot:  {base}/copilot")
    console.print(f"Dashboard:      {base}/dashboard")
    if settings.demo:
        console.print(f"Widget demo:    {base}/widget-demo  (a shop's product page with the chat widget)")
    console.print(f"API:            {base}/v1/chat  (docs: {base}/docs)")
    uvicorn.run(
        app, host=settings.ui_host, port=settings.ui_port, log_level="warning", h11_max_incomplete_event_size=65536
    )
