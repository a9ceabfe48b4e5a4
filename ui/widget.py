"""The chat on the shop's own pages.

- ``GET /widget.js`` (``ui/static/widget.js``): a shop pastes ``<script src="https://KEFU/widget.js"
  data-kefu-title="…" defer></script>`` into any page and gets a launcher button that opens and closes the chat
  page in an iframe, in its embedded layout (``/?embed=1``: ``ui/static/embed.js`` marks the page, ``ui/chat.py``'s
  CSS lays it out for 380 x 600).
- Who may frame the chat page: its ``Content-Security-Policy: frame-ancestors`` lists Kefu's own origin and
  ``KEFU_EMBED_ORIGINS``; the staff pages may be framed by no one.
- ``POST /v1/tokens``: the shop's back end, authenticated with ``KEFU_TOKEN_KEY``, gets a session token for the
  customer signed in on its site and writes it into the snippet (``data-kefu-token``); the widget hands it to the
  chat page (``?token=``), which verifies it like any other token (``ui/auth.py``).
"""

from __future__ import annotations

import hmac
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from ui.web import Server

NO_FRAMING = ("/copilot", "/dashboard", "/staff")  # staff pages: never inside anyone's frame


@cache
def static_text(name: str) -> str:
    return (files("ui") / "static" / name).read_text(encoding="utf-8")


def embed_head() -> str:
    """The chat page's extra ``<head>``: the embedded layout's switch."""
    return f"<script>{static_text('embed.js')}</script>"


def frame_ancestors(embed_origins: list[str], path: str) -> str:
    """The CSP frame-ancestors directive for a response to ``path``."""
    if path.startswith(NO_FRAMING):
        return "frame-ancestors 'none'"
    return " ".join(["frame-ancestors", "'self'", *embed_origins])


class TokenRequest(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64, description="The customer signed in on the shop's site.")


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

    @app.post("/v1/tokens")
    def issue_token(body: TokenRequest, authorization: str | None = Header(None)) -> TokenAnswer:
        """A session token for the shop's signed-in customer (the shop's back end calls this, never a browser)."""
        key = settings.token_key
        if not key:
            raise HTTPException(503, "Token issuing is off; set KEFU_TOKEN_KEY and send it as a Bearer token.")
        if not hmac.compare_digest((authorization or "").encode(), f"Bearer {key}".encode()):
            raise HTTPException(401, "Wrong or missing token key (Authorization: Bearer $KEFU_TOKEN_KEY).")
        try:
            token = tokens.issue(body.customer_id)
        except ValueError as exc:
            raise HTTPException(422, f"{exc}: send the shop's customer id (printable, at most 64 characters).") from None
        return TokenAnswer(token=token, customer_id=body.customer_id, expires_in_s=tokens.ttl_s)
