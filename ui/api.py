"""The HTTP API (FastAPI): ``POST /v1/chat`` answered as server-sent events, ``GET /v1/customers/{id}/profile``,
and ``POST /v1/events`` for the shop's backend (orders, views, carts -> live profile updates).

``/v1/chat`` takes a ``message`` in words, or a typed ``action`` beside or instead of it (``assistant/actions.py``:
``{"kind": "similar", "product_id": "…"}``, ``{"kind": "refine", "refinement": "cheaper"}`` …), which skips the
understanding step; the message, when given, is then only the label the conversation's history shows.

The customer comes from the ``Authorization: Bearer <token>`` header (a signed, expiring token: ``ui/auth.py``;
``kefu token CUSTOMER`` makes one); without one the shopper is a guest. Conversations live in the hub
(``ui/hub.py``: this process, or Redis shared by every worker), bound to their customer, shared with the chat page
and the copilot. A message for a conversation whose previous turn is still running gets a 409 (retry after it);
with the shared store down, a 503 until it is back.
``/v1/events`` takes the shop's key instead (``KEFU_EVENTS_KEY``; the endpoint is off without one).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterator
from typing import get_args

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from assistant.actions import Action
from assistant.events import Event, ToolCalled
from assistant.loop import Assistant
from assistant.session import Deps, Session
from assistant.shop_tools import get_my_profile
from assistant.tools import run_tool
from kefu.errors import ConversationBusy, StateError, StoreError
from kefu.settings import Settings
from segmentation.profiles import ProfileEvent, RecordResult
from ui.auth import AuthError, Tokens, bearer
from ui.hub import Hub
from ui.limits import TOO_MANY, BodyLimit, ShopperLimits


class Problem(BaseModel):
    """An error the client can act on (FastAPI's own ``{"detail": …}`` shape)."""

    detail: str


ERRORS = {
    400: "The body could not be parsed (not JSON, or not UTF-8).",
    401: "The session token (or the events key) is missing, malformed, forged or expired.",
    403: "Signed in as someone else.",
    404: "Nothing to show for this customer.",
    409: "Chat: the conversation's previous turn is still running (retry after it). Events: the event does not "
    "fit the store (e.g. an unknown customer or product data).",
    413: "The request body is over KEFU_MAX_REQUEST_BYTES.",
    429: "Too many messages from this address or customer; retry after the Retry-After seconds.",
    503: "The feature is off or not built yet, or the shared state store (KEFU_STATE_URL) is not answering; the "
    "detail says what to do.",
}
log = logging.getLogger(__name__)
EVENT_TYPES = get_args(Event)  # the turn's typed events, in the order of the union
REF = "#/components/schemas/{model}"


def event_stream() -> tuple[dict, dict]:
    """The stream's OpenAPI ``content`` (before OpenAPI 3.2 an event stream's ``schema`` describes each event:
    ``event`` is its kind, ``data`` its JSON) and the event models' schemas for ``components``."""
    _, top = models_json_schema([(m, "serialization") for m in EVENT_TYPES], ref_template=REF)
    kinds = [m.model_fields["kind"].default for m in EVENT_TYPES]
    data = {"type": "string", "contentMediaType": "application/json",
            "contentSchema": {"oneOf": [{"$ref": REF.format(model=m.__name__)} for m in EVENT_TYPES]}}  # fmt: skip
    event = {"type": "object", "required": ["event", "data"], "properties": {"event": {"enum": kinds}, "data": data}}
    return {"text/event-stream": {"schema": event}}, top["$defs"]


SSE, EVENT_SCHEMAS = event_stream()


def errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` for the error codes a route answers with."""
    return {code: {"model": Problem, "description": ERRORS[code]} for code in codes}


class ChatRequest(BaseModel):
    message: str = Field("", max_length=20_000)
    action: Action | None = None
    conversation_id: str | None = Field(None, max_length=64)


def shopper_json(event: Event) -> str:
    """An event as the shopper's client receives it: a tool's model-facing text (``summary``: what the model
    read, fenced shop data included) stays on the server; the typed result (``data``, products) goes out."""
    if isinstance(event, ToolCalled):
        return event.model_dump_json(exclude={"summary"})
    return event.model_dump_json()


def _document_events(app: FastAPI) -> None:
    """Add the event models to the app's OpenAPI components (the stream's ``contentSchema`` points at them)."""
    default = app.openapi

    def openapi() -> dict:
        schema = default()  # FastAPI builds it once and caches this dict
        schema.setdefault("components", {}).setdefault("schemas", {}).update(EVENT_SCHEMAS)
        return schema

    app.openapi = openapi


def create_app(
    assistant: Assistant,
    settings: Settings,
    hub: Hub | None = None,
    app: FastAPI | None = None,
    limits: ShopperLimits | None = None,
) -> FastAPI:
    """The API routes, on ``app`` when given (the web server's, which limits bodies itself), sharing ``hub``'s
    conversations and ``limits``' counters."""
    if app is None:
        app = FastAPI(title="Kefu", version="0.1.0")
        app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    _document_events(app)
    hub = hub or Hub.from_settings(settings)
    limits = limits or ShopperLimits(settings)
    tokens = Tokens.from_settings(settings)

    @app.exception_handler(ConversationBusy)
    async def busy(_: Request, exc: ConversationBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 409, headers={"Retry-After": "2"})

    @app.exception_handler(StateError)
    async def state_down(_: Request, exc: StateError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": "5"})

    def customer_of(authorization: str | None) -> str | None:
        try:
            return tokens.customer(bearer(authorization))
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None

    @app.post(
        "/v1/chat",
        response_class=StreamingResponse,
        responses={
            200: {"content": SSE, "description": "The turn's events, streamed"},
            **errors(400, 401, 409, 413, 429, 503),
        },
    )
    def chat(body: ChatRequest, request: Request, authorization: str | None = Header(None)) -> StreamingResponse:
        customer_id = customer_of(authorization)
        if not limits.allow(request.client.host if request.client else None, customer_id):
            raise HTTPException(429, TOO_MANY, headers={"Retry-After": "60"})
        conversation = hub.open(body.conversation_id, customer_id)
        events = hub.turn(assistant, conversation, body.message, body.action)  # 409 / 503 before the stream

        def stream() -> Iterator[str]:
            try:
                for event in events:
                    yield f"event: {event.kind}\ndata: {shopper_json(event)}\n\n"
            except StateError as exc:  # the store went down mid-turn: the stream ends, this turn is not kept
                log.warning("conversation %s: %s", conversation.id, exc)

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.get("/v1/customers/{customer_id}/profile", responses=errors(401, 403, 404))
    def profile(customer_id: str, authorization: str | None = Header(None)) -> dict:
        if customer_of(authorization) != customer_id:
            raise HTTPException(403, "You can only read your own profile.")
        result = run_tool(get_my_profile, Deps(assistant.services, Session(customer_id=customer_id)), {})
        if not result.ok:
            raise HTTPException(404, result.text)
        return json.loads(json.dumps(result.data, default=str))

    @app.post("/v1/events", responses=errors(400, 401, 409, 413, 503))
    def record_event(event: ProfileEvent, authorization: str | None = Header(None)) -> RecordResult:
        """One customer event from the shop's backend: updates that customer's live profile, reports drift."""
        key = settings.events_key
        if not key:
            raise HTTPException(503, "Live profile events are off; set KEFU_EVENTS_KEY and send it as a Bearer token.")
        if not hmac.compare_digest((authorization or "").encode(), f"Bearer {key}".encode()):
            raise HTTPException(401, "Wrong or missing events key (Authorization: Bearer $KEFU_EVENTS_KEY).")
        profiles = assistant.services.profiles
        if profiles is None:
            raise HTTPException(503, "No fitted segmentation; run `kefu segment fit`, then restart `kefu serve`.")
        try:
            return profiles.record(event)
        except StoreError as exc:
            raise HTTPException(409, str(exc)) from None

    return app
