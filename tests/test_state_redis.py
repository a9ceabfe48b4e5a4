"""The hub's Redis backend against a real redis-server (started here): a conversation saved by one hub is
continued, typed, by another; leases refuse a second turn at once and lapse when their holder stops renewing;
guests and customers keep separate spaces and caps; limits count across hubs; Redis down is a clear StateError
(the API's 503) and the same objects work again once it is back."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from assistant.events import ProductCard, ToolCalled, TurnDone, Understood
from assistant.loop import Assistant
from assistant.session import PendingReturn
from kefu.errors import ConversationBusy, StateError
from kefu.settings import Settings
from tests.fake_llm import ScriptedLLM, reading
from tests.fake_services import fake_services
from tests.redis_server import RedisServer
from ui.api import create_app
from ui.hub import Hub
from ui.limits import ShopperLimits
from ui.state_redis import RedisState


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def hub_on(server: RedisServer, **kw) -> Hub:
    return Hub(state=RedisState(server.url, **kw))


def test_a_conversation_saved_by_one_hub_continues_typed_on_another(redis_server):
    a, b = hub_on(redis_server), hub_on(redis_server)
    llm = ScriptedLLM([reading(product="pasta"), reading(product="")])
    assistant = Assistant(fake_services(), llm)
    conversation = a.open(None, "1111")
    first = list(a.turn(assistant, conversation, "pasta"))[-1]
    assert isinstance(first, TurnDone) and first.turn == 1
    on_b = b.open(conversation.id, "1111")
    assert on_b is not conversation and on_b.id == conversation.id  # read back from Redis, not shared memory
    assert on_b.session.turn == 1 and on_b.session.slots == conversation.session.slots
    assert all(isinstance(c, ProductCard) for c in on_b.session.candidates) and on_b.session.candidates
    assert isinstance(on_b.turns[0][0], Understood) and any(isinstance(e, ToolCalled) for e in on_b.turns[0])
    second = list(b.turn(assistant, on_b, "cheaper"))[-1]
    assert second.turn == 2 and second.conversation_id == conversation.id
    assert [role for role, _ in a.get(conversation.id).messages] == ["user", "assistant"] * 2
    assert a.open(conversation.id, "2222").id != conversation.id  # another customer never gets it
    assert a.open(conversation.id, None).id != conversation.id  # nor a guest


def test_a_pending_return_survives_the_round_trip(redis_server):
    a, b = hub_on(redis_server), hub_on(redis_server)
    conversation = a.open(None, "1111")
    conversation.session.pending_return = PendingReturn("40000000001", None, "broken", asked_turn=1)
    a.state.save_turn(conversation, [], [])
    assert b.get(conversation.id).session.pending_return == conversation.session.pending_return


def test_a_second_turn_is_refused_at_once_and_a_dead_holders_lease_lapses(redis_server):
    a, b = hub_on(redis_server, lease_s=1.0), hub_on(redis_server, lease_s=1.0)
    conversation = a.open(None, None)
    lease = a.state.acquire(conversation.id)  # a worker that took the lease and then died (no heartbeat)
    started = time.monotonic()
    with pytest.raises(ConversationBusy, match="still answering"):
        b.turn(Assistant(fake_services(), ScriptedLLM([reading(product="milk")])), conversation, "milk")
    assert time.monotonic() - started < 0.5 and b.busy(conversation.id)
    time.sleep(1.2)
    assert not b.busy(conversation.id)
    done = list(b.turn(Assistant(fake_services(), ScriptedLLM([reading(product="milk")])), conversation, "milk"))
    assert done[-1].turn == 1
    a.state.release(lease)  # the dead holder's token no longer frees anything
    assert not b.busy(conversation.id)


def test_the_heartbeat_keeps_a_long_turn_s_lease(redis_server):
    class Slow(ScriptedLLM):
        def structured(self, messages, schema, **kw):
            time.sleep(2.5)
            return super().structured(messages, schema, **kw)

    a, b = hub_on(redis_server, lease_s=1.0), hub_on(redis_server, lease_s=1.0)
    conversation = a.open(None, None)
    events = a.turn(Assistant(fake_services(), Slow([reading(product="milk")])), conversation, "milk")
    import threading

    thread = threading.Thread(target=lambda: list(events))
    thread.start()
    time.sleep(1.8)  # past one lease time: still held, renewed
    assert b.busy(conversation.id)
    thread.join(10)
    assert not b.busy(conversation.id)


def test_guests_and_customers_have_separate_spaces_and_caps(redis_server):
    hub = hub_on(redis_server, max_guests=5, max_customers=5)
    mine = hub.open(None, "c-cap")
    for _ in range(30):
        hub.open(None, None)
    assert hub.get(mine.id) is not None  # the guest flood evicts guests only
    live = hub.live_ids()
    assert mine.id in live
    assert len(live) <= 5 + 5
    assert redis_server.url and hub.state.redis.exists(f"kefu:customer:conv:{mine.id}")


def test_limits_count_across_workers(redis_server, settings):
    shared = settings.model_copy(update={"state_url": redis_server.url, "rate_limit_per_customer_per_minute": 3})
    a, b = ShopperLimits(shared), ShopperLimits(shared)
    assert [a.allow("10.0.0.1", "c-limit"), b.allow("10.0.0.2", "c-limit"), a.allow("10.0.0.3", "c-limit")] == [
        True, True, True,
    ]  # fmt: skip
    assert not b.allow("10.0.0.4", "c-limit")  # the fourth message anywhere is over the customer's cap
    assert b.allow("10.0.0.4", None)  # a guest from that address is counted apart


def test_a_bad_state_url_is_a_clear_setting_error():
    with pytest.raises(ValueError, match="not a Redis URL"):
        Settings(state_url="http://127.0.0.1:6379")


def test_redis_down_is_a_503_and_back_recovers(tmp_path, settings):
    server = RedisServer(tmp_path / "r").start()
    shared = settings.model_copy(update={"state_url": server.url, "auth_secret": "s" * 32})
    llm = ScriptedLLM([reading(product="pasta"), reading(product="")])
    client = TestClient(create_app(Assistant(fake_services(), llm), shared))
    first = client.post("/v1/chat", json={"message": "pasta"})
    assert first.status_code == 200
    conversation_id = first.text.split('"conversation_id":"')[1].split('"')[0]
    server.stop()
    started = time.monotonic()
    down = client.post("/v1/chat", json={"message": "cheaper", "conversation_id": conversation_id})
    assert down.status_code == 503 and "shared state store (Redis" in down.json()["detail"]
    assert "Start Redis or fix KEFU_STATE_URL" in down.json()["detail"] and time.monotonic() - started < 5
    hub = hub_on(server)
    with pytest.raises(StateError, match="not answering"):
        hub.get(conversation_id)
    server.start()  # the same port, empty (no persistence): the conversation is gone, a new one starts
    back = client.post("/v1/chat", json={"message": "cheaper", "conversation_id": conversation_id})
    assert back.status_code == 200 and '"turn":1' in back.text
    server.stop()
