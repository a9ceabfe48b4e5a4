"""Abuse limits at the door, before any turn runs: messages per client address and per signed-in customer (the
loop itself limits each conversation), and a request-body limit enforced while the body is read, before
anything parses it. Rotating conversation ids buys nothing: the address and the customer stay the same.

Client addresses are the socket's peer (``kefu serve`` listens on loopback by default); behind a reverse proxy,
run uvicorn with ``--forwarded-allow-ips`` so the peer is the shopper, not the proxy.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.guardrails import RateLimiter
from kefu.settings import Settings
from kefu.state_store import limits_storage

TOO_MANY = "You're sending messages faster than we can answer. Please wait a minute and try again."


class ShopperLimits:
    def __init__(self, settings: Settings) -> None:
        storage = limits_storage(settings.state_url)  # Redis when set: every worker counts in the same windows
        self.address = RateLimiter(settings.rate_limit_per_address_per_minute, 60, storage, "address")
        self.customer = RateLimiter(settings.rate_limit_per_customer_per_minute, 60, storage, "customer")

    def allow(self, address: str | None, customer_id: str | None) -> bool:
        """Count one message; False when the address or the customer is over its limit (guests count against
        their address only, signed-in customers against both: separate keys and caps). ``StateError`` when the
        shared counters' store is down."""
        ok = self.address.allow(f"ip:{address or 'unknown'}")
        return (self.customer.allow(f"customer:{customer_id}") if customer_id else True) and ok


class BodyLimit:
    """ASGI middleware: a request whose body is over ``max_bytes`` gets a 413 before the app parses it (by its
    Content-Length, or while a chunked body streams in)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        seen, started, refused = 0, False, False

        async def limited_receive() -> Message:
            nonlocal seen, started, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not refused:
                    refused = True
                    if not started:
                        started = True
                        await self._refuse(send)
                    return {"type": "http.disconnect"}  # the app stops reading; what it sends next is dropped
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, tracked_send)

    async def _refuse(self, send: Send) -> None:
        body = f'{{"detail": "Request too large (over {self.max_bytes} bytes)."}}'.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
