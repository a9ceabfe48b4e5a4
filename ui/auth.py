"""Demo session tokens: ``<customer_id>.<hmac>`` signed with ``settings.auth_secret``. The customer a request acts
for comes only from a valid token (guest without one), never from a request body or model output."""

from __future__ import annotations

import hashlib
import hmac


def sign(customer_id: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{customer_id}.{mac}"


def verify(token: str | None, secret: str) -> str | None:
    """The customer id of a valid token; None for no token. Raises ValueError for a forged one."""
    if not token:
        return None
    customer_id, _, _mac = token.rpartition(".")
    if not customer_id or not hmac.compare_digest(sign(customer_id, secret), token):
        raise ValueError("invalid session token")
    return customer_id
