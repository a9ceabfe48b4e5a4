"""Abuse limits, attacked: a conversation-id rotation flood, per-customer limits across addresses, bounded limiter
memory, idle expiry, a guest flood that must not evict a signed-in customer's session (pending return included),
oversized and chunked bodies refused before parsing, and two messages at once on one conversation."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from assistant.events import TurnDone
from assistant.guardrails import RateLimiter
from assistant.loop import Assistant
from assistant.session import PendingReturn
from kefu.errors import ConversationBusy
from tests.fake_llm import ScriptedLLM, reading
from tests.fake_services import fake_services
from ui.api import create_app
from ui.hub import Hub
from ui.limits import ShopperLimits

SECRET = "limits-test-secret-0123456"


def api(settings, **update) -> TestClient:
    settings = settings.model_copy(update={"auth_secret": SECRET, **update})
    llm = ScriptedLLM([reading(product="pasta")] * 50)
    return TestClient(create_app(Assistant(fake_services(), llm), settings))


def test_rotating_conversation_ids_does_not_escape_the_limit(settings):
    client = api(settings, rate_limit_per_address_per_minute=5)
    codes = [client.post("/v1/chat", json={"message": "pasta"}).status_code for _ in range(8)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3  # each request opened a new conversation
    r = client.post("/v1/chat", json={"message": "pasta", "conversation_id": "made-up"})
    assert r.status_code == 429 and r.headers["retry-after"] == "60" and "wait a minute" in r.json()["detail"]


def test_a_customer_is_limited_across_addresses(settings):
    limits = ShopperLimits(settings.model_copy(update={"rate_limit_per_customer_per_minute": 3}))
    assert [limits.allow(f"10.0.0.{i}", "1111") for i in range(5)] == [True, True, True, False, False]
    assert limits.allow("10.0.0.9", "2222") and limits.allow("10.0.0.9", None)  # others are not affected


def test_limiter_memory_stays_bounded():
    limiter = RateLimiter(limit=3, window_s=1)
    for i in range(5000):
        limiter.allow(f"conversation-{i}")
    assert limiter.keys() >= 5000
    time.sleep(2.2)
    limiter.allow("one-more")  # expiry runs with the next event
    time.sleep(0.3)
    assert limiter.keys() <= 2


def test_idle_conversations_expire():
    hub = Hub(idle_s=1)
    conversation = hub.open(None, "1111")
    assert hub.get(conversation.id) is conversation
    time.sleep(1.3)
    assert hub.get(conversation.id) is None
    assert hub.open(conversation.id, "1111").id != conversation.id  # a fresh one, not the expired state


def test_a_guest_flood_cannot_evict_a_signed_in_customers_session():
    hub = Hub(idle_s=3600, max_guests=100, max_customers=100)
    mine = hub.open(None, "c1")
    mine.session.pending_return = PendingReturn("40000000001", None, "broken", asked_turn=1)
    for _ in range(10_000):
        hub.open(None, None)
    assert hub.get(mine.id) is mine and mine.session.pending_return is not None
    assert len(hub.live()) <= 200


def test_an_oversized_body_is_refused_before_parsing(settings):
    client = api(settings, max_request_bytes=4096)
    r = client.post("/v1/chat", content=b'{"message": "' + b"a" * 10_000 + b'"}',
                    headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and "too large" in r.json()["detail"]

    def chunks():  # no Content-Length: counted while it streams in
        yield b'{"message": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    r = client.post("/v1/chat", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.post("/v1/chat", json={"message": "pasta"}).status_code == 200


class SlowLLM(ScriptedLLM):
    """Takes its time reading, so a second message arrives while the first turn is running."""

    def structured(self, messages, schema, **kw):
        time.sleep(0.8)
        return super().structured(messages, schema, **kw)


def test_a_concurrent_message_is_refused_while_the_pending_returns_turn_runs():
    services = fake_services()
    llm = SlowLLM([reading(intent="return_refund"), reading(intent="chitchat"), reading(product="pasta")])
    assistant, hub = Assistant(services, llm), Hub()
    conversation = hub.open(None, "c1")
    list(hub.turn(assistant, conversation, "I want to return order 40000000001"))
    assert conversation.session.pending_return is not None

    done: list[TurnDone] = []
    confirm = threading.Thread(target=lambda: done.append(list(hub.turn(assistant, conversation, "yes, go ahead"))[-1]))
    confirm.start()
    time.sleep(0.2)  # the confirmation turn holds the conversation's lease now
    started = time.monotonic()
    with pytest.raises(ConversationBusy, match="still answering its previous message"):
        hub.turn(assistant, conversation, "pasta")
    assert time.monotonic() - started < 0.1  # refused at once, no thread waits for the turn
    confirm.join(10)
    assert done[0].return_id is not None and done[0].turn == 2  # the return went through, not cancelled
    assert list(hub.turn(assistant, conversation, "pasta"))[-1].turn == 3  # free again once it finished
    assert [len(t) and isinstance(t[-1], TurnDone) for t in conversation.turns] == [True, True, True]
