"""Who a request acts for. Shoppers carry a session token, ``<customer_id>.<issued>.<signature>`` made by
itsdangerous' ``TimestampSigner`` with ``settings.auth_secret``: it expires after ``session_token_ttl_s`` and
rotating the secret revokes every token. Staff (support agents, analysts) enter ``KEFU_AGENT_KEY`` once and get a
signed staff cookie. The customer comes only from a valid token (guest without one), never from a request body,
a typed id or model output.

Demo mode (``kefu serve --demo``) signs with a fixed, public secret when none is set; outside it there is no
default secret and the server refuses to start without one.
"""

from __future__ import annotations

import hmac

from itsdangerous import BadData, SignatureExpired, TimestampSigner

from kefu.errors import ConfigError, KefuError
from kefu.settings import Settings

DEMO_SECRET = "kefu-demo-secret (public: demo mode only)"
STAFF_COOKIE = "kefu_staff"
SESSION_COOKIE = "kefu_session"
STAFF_TTL_S = 12 * 3600
MAX_TOKEN_CHARS = 512


class AuthError(KefuError):
    """A token or key is missing, malformed, forged or expired; the message says what to do."""


def secret_of(settings: Settings) -> str:
    if settings.auth_secret:
        if len(settings.auth_secret) < 16:
            raise ConfigError("KEFU_AUTH_SECRET is too short (at least 16 characters); make one with: "
                              "python -c 'import secrets; print(secrets.token_urlsafe(32))'")  # fmt: skip
        return settings.auth_secret
    if settings.demo:
        return DEMO_SECRET
    raise ConfigError(
        "No KEFU_AUTH_SECRET: session tokens cannot be signed. Set one (python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))') or run the demo with `kefu serve --demo`."
    )


class Tokens:
    """Session tokens for shoppers and the staff cookie, both from one secret."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._shopper = TimestampSigner(secret, salt="kefu-session")
        self._staff = TimestampSigner(secret, salt="kefu-staff")
        self.ttl_s = ttl_s

    @classmethod
    def from_settings(cls, settings: Settings) -> Tokens:
        return cls(secret_of(settings), settings.session_token_ttl_s)

    def issue(self, customer_id: str) -> str:
        if not customer_id or len(customer_id) > 64 or not customer_id.isprintable():
            raise ValueError(f"not a customer id: {customer_id!r}")
        return self._shopper.sign(customer_id).decode()

    def customer(self, token: str | None) -> str | None:
        """The customer id of a valid token; None for no token. Raises AuthError for any other token."""
        if not token:
            return None
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("That session token is not one of ours (too long); sign in again.")
        try:
            return self._shopper.unsign(token, max_age=self.ttl_s).decode()
        except SignatureExpired:
            raise AuthError("Your session token has expired; sign in again.") from None
        except (BadData, UnicodeError, ValueError):
            raise AuthError("That session token is not valid (forged, damaged or signed with an old secret); "
                            "sign in again.") from None  # fmt: skip

    def staff_cookie(self) -> str:
        return self._staff.sign("staff").decode()

    def is_staff(self, cookie: str | None) -> bool:
        if not cookie or len(cookie) > MAX_TOKEN_CHARS:
            return False
        try:
            return self._staff.unsign(cookie, max_age=STAFF_TTL_S) == b"staff"
        except (BadData, UnicodeError, ValueError):
            return False


def agent_key_ok(settings: Settings, key: str | None) -> bool:
    """Whether ``key`` is the configured agent key (constant time; False when none is configured)."""
    if not settings.agent_key or not key:
        return False
    return hmac.compare_digest(key.encode("utf-8", "replace"), settings.agent_key.encode())


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None without one)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("Send the session token as `Authorization: Bearer <token>`.")
    return token.strip() or None
