"""The chat on the shop's own pages.

- ``GET /widget.js`` (``ui/static/widget.js``): a shop pastes ``<script src="https://KEFU/widget.js"
  data-kefu-title="…" defer></script>`` into any page and gets a launcher button that opens and closes the chat
  page in an iframe, in its embedded layout (``/?embed=1``: ``ui/static/embed.js`` marks the page, ``ui/chat.py``'s
  CSS lays it out for 380 x 600).
- Who may frame the chat page: its ``Content-Security-Policy: frame-ancestors`` lists Kefu's own origin and
  ``KEFU_EMBED_ORIGINS``; the staff pages may be framed by no one.
- ``GET /widget-demo`` (demo mode only): a product page of the demo shop with the snippet
  (``ui/static/widget-demo.html``, also the browser test's page on another origin).
- ``POST /v1/tokens``: the shop's back end, authenticated with ``KEFU_TOKEN_KEY``, gets a session token for the
  customer signed in on its site and writes it into the snippet (``data-kefu-token``); the widget hands it to the
  chat page (``?token=``), which verifies it like any other token (``ui/auth.py``).
"""

from __future__ import annotations

import hmac
import html
import string
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from assistant.events import card_price_text
from ui.api import Problem, errors

if TYPE_CHECKING:
    from ui.web import Server

TOKEN_ERRORS: dict[int | str, dict] = {
    **errors(400, 413, 429),
    401: {"model": Problem, "description": "The Authorization header is not Bearer $KEFU_TOKEN_KEY."},
    503: {"model": Problem, "description": "Token issuing is off: KEFU_TOKEN_KEY is not set."},
}
NO_FRAMING = ("/copilot", "/dashboard", "/staff")  # staff pages: never inside anyone's frame


@cache
def static_text(name: str) -> str:
    return (files("ui") / "static" / name).read_text(encoding="utf-8")


def embed_head() -> str:
    """The chat page's extra ``<head>``: the embedded layout's switch."""
    return f"<script>{static_text('embed.js')}</script>"


def demo_page(kefu: str, product: dict[str, str], token: str = "") -> str:
    """The shop's product page with the snippet pointing at ``kefu`` (``ui/static/widget-demo.html``); ``product``:
    title, price (as shown), brand, size, department, category; ``token`` signs the shopper in."""
    attr = f'data-kefu-token="{html.escape(token)}"' if token else ""
    fields = {k: html.escape(v) for k, v in product.items()}
    return string.Template(static_text("widget-demo.html")).substitute(fields, kefu=html.escape(kefu), token_attr=attr)


def frame_ancestors(embed_origins: list[str], path: str) -> str:
    """The CSP frame-ancestors directive for a response to ``path``."""
    if path.startswith(NO_FRAMING):
        return "frame-ancestors 'none'"
    return " ".join(["frame-ancestors", "'self'", *embed_origins])


class TokenRequest(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$",
                             description="The customer signed in on the shop's site (printable ASCII).")  # fmt: skip


class TokenAnswer(BaseModel):
    token: str = Field(description="Session token: data-kefu-token in the snippet, or Authorization: Bearer.")
    customer_id: str
    expires_in_s: int


def add_widget(app: FastAPI, server: Server) -> None:
    """Mount ``/widget.js``, ``POST /v1/tokens`` and the frame-ancestors policy on the web app."""
    settings, tokens = server.settings, server.tokens

    @app.middleware("http")
    async def frame_policy(request: Request, call_next):
        response = await call_next(request)
        policy = frame_ancestors(settings.embed_origins, request.url.path)
        response.headers["Content-Security-Policy"] = policy
        if "'self'" not in policy:
            response.headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
        return response

    @app.get("/widget.js", include_in_schema=False)
    def widget_js() -> Response:
        return Response(
            static_text("widget.js"),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=300"},
        )

    if settings.demo:

        @app.get("/widget-demo", include_in_schema=False)
        def widget_demo(request: Request) -> HTMLResponse:
            """Demo mode: a product page of the demo shop with the widget (the busiest customer's usual product)."""
            assistant = server.assistant
            if assistant is None:
                return HTMLResponse(f"The shop assistant is not set up: {html.escape(server.unavailable or '')}", 503)
            orders = assistant.services.orders
            customer = orders.busiest_customers(1)[0]
            card = assistant.services.catalogue.details([orders.usual(customer, 1)[0][0]])[0]
            product = {"title": card.title, "price": card_price_text(card), "brand": card.brand or "",
                       "size": card.size or "", "department": card.department or "",
                       "category": card.category or ""}  # fmt: skip
            return HTMLResponse(demo_page(str(request.base_url).rstrip("/"), product))

    @app.post("/v1/tokens", responses=TOKEN_ERRORS)
    def issue_token(body: TokenRequest, authorization: str | None = Header(None)) -> TokenAnswer:
        """A session token for the shop's signed-in customer (the shop's back end calls this, never a browser)."""
        key = settings.token_key
        if not key:
            raise HTTPException(503, "Token issuing is off; set KEFU_TOKEN_KEY and send it as a Bearer token.")
        if not hmac.compare_digest((authorization or "").encode(), f"Bearer {key}".encode()):
            raise HTTPException(401, "Wrong or missing token key (Authorization: Bearer $KEFU_TOKEN_KEY).")
        token = tokens.issue(body.customer_id)  # the request model already holds it to what a token can carry
        return TokenAnswer(token=token, customer_id=body.customer_id, expires_in_s=tokens.ttl_s)
