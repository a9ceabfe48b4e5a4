"""The connection to the shared state store that lets several `kefu serve` workers act as one (``KEFU_STATE_URL``,
Redis): one client per URL per process, short timeouts and one immediate retry (a pooled connection that died
with a Redis restart is replaced at once), and every failure turned into a ``StateError`` a user can act on.

The redis client is an optional extra (``pip install -e '.[scale]'``); the in-process default never imports it.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from limits.storage import MemoryStorage, RedisStorage, Storage

from kefu.errors import StateError

if TYPE_CHECKING:
    import redis

LIMITS_PREFIX = "kefu:limits"


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def unavailable(url: str, exc: BaseException) -> StateError:
    return StateError(
        f"The shared state store (Redis at {safe_url(url)}) is not answering ({type(exc).__name__}: {exc}). "
        "Start Redis or fix KEFU_STATE_URL; the workers reconnect by themselves once it is back."
    )


@functools.cache
def connect(url: str) -> redis.Redis:
    """The process's client for ``url`` (thread-safe: a connection pool)."""
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        raise StateError(
            "KEFU_STATE_URL needs the redis client: pip install -e '.[scale]' (or -r requirements/scale.txt)."
        ) from None
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=5.0,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
        decode_responses=True,
    )


def limits_storage(url: str | None) -> Storage:
    """Where the ``limits`` counters live: this process's memory, or Redis (shared by every worker), errors
    wrapped as ``limits.errors.StorageError``."""
    if url is None:
        return MemoryStorage()
    connect(url)  # the same clear error when the redis client is missing
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return RedisStorage(url, key_prefix=LIMITS_PREFIX, wrap_exceptions=True, socket_connect_timeout=1.0,
                        socket_timeout=5.0, retry=Retry(NoBackoff(), 1))  # fmt: skip
