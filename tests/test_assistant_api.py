"""The HTTP API: server-sent events per turn, identity from signed tokens only, own profile only."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from assistant.loop import Assistant
from tests.conftest import real_services
from tests.fake_llm import ScriptedLLM, reading
from tests.fake_services import fake_services
from ui.api import create_app
from ui.auth import Tokens

SECRET = "api-test-secret-0123456789"


@pytest.fixture(scope="module")
def api_settings(shop_settings):
    return shop_settings.model_copy(update={"auth_secret": SECRET})


def sign(customer_id: str) -> str:
    return Tokens(SECRET, 3600).issue(customer_id)


@pytest.fixture(scope="module")
def services(shop_settings):
    return real_services(shop_settings, shop_settings.data_dir / "api-records.sqlite")


def events_of(response) -> list[tuple[str, dict]]:
    out = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def client_for(services, llm, settings) -> TestClient:
    return TestClient(create_app(Assistant(services, llm), settings))


def test_chat_streams_events_and_keeps_the_conversation(services, api_settings):
    llm = ScriptedLLM([reading(product="crackers"), reading(product="")], ["Crackers!", "Cheaper ones."])
    client = client_for(services, llm, api_settings)
    token = sign("1111")
    r = client.post("/v1/chat", json={"message": "crackers"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = events_of(r)
    kinds = [k for k, _ in events]
    assert kinds[0] == "understood" and "tool" in kinds and "products" in kinds and kinds[-1] == "done"
    assert kinds.count("text") >= 2  # streamed in pieces
    done = events[-1][1]
    products = next(d for k, d in events if k == "products")["items"]
    assert all("summary" not in d for k, d in events if k == "tool")  # the model's view stays on the server
    assert all({"product_id", "title", "price"} <= set(p) for p in products)
    r2 = client.post(
        "/v1/chat",
        json={"message": "cheaper", "conversation_id": done["conversation_id"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    done2 = events_of(r2)[-1][1]
    assert done2["conversation_id"] == done["conversation_id"] and done2["turn"] == 2


def test_identity_comes_from_the_token_never_the_body(services, api_settings):
    llm = ScriptedLLM([reading(intent="order_status")] * 2)
    client = client_for(services, llm, api_settings)
    r = client.post("/v1/chat", json={"message": "where is my order?", "customer_id": "1111"})
    assert "sign in" in events_of(r)[-1][1]["reply"]  # guest: the body's customer_id is ignored
    forged = "1111." + "0" * 32
    r = client.post("/v1/chat", json={"message": "hi"}, headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and "sign in again" in r.json()["detail"]


@pytest.mark.parametrize(
    "token",
    [
        "1111.x",  # the old MAC format
        "é.x",  # non-ASCII: a 401, never a 500
        "1111." + "a" * 600,
        Tokens("some-other-secret-0123", 3600).issue("1111"),  # signed with another (or a rotated) secret
    ],
)
def test_malformed_forged_and_foreign_tokens_get_a_401(services, api_settings, token):
    client = client_for(services, ScriptedLLM([reading(intent="order_status")]), api_settings)
    headers = {"Authorization": f"Bearer {token}".encode()}  # bytes: a raw header, UTF-8 included
    r = client.post("/v1/chat", json={"message": "my orders"}, headers=headers)
    assert r.status_code == 401, r.text
    assert "sign in again" in r.json()["detail"]


def test_expired_tokens_get_a_401(services, api_settings):
    import time

    from itsdangerous import TimestampSigner

    signer = TimestampSigner(SECRET, salt="kefu-session")
    signer.get_timestamp = lambda: int(time.time()) - 7200  # issued two hours ago
    old = signer.sign("1111").decode()
    client = TestClient(create_app(Assistant(services, ScriptedLLM()), api_settings.model_copy(
        update={"session_token_ttl_s": 3600})))  # fmt: skip
    r = client.post("/v1/chat", json={"message": "hi"}, headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_no_default_secret_outside_demo_mode(shop_settings):
    from kefu.errors import ConfigError

    with pytest.raises(ConfigError, match="KEFU_AUTH_SECRET"):
        create_app(Assistant(fake_services(), ScriptedLLM()), shop_settings.model_copy(update={"auth_secret": None}))
    demo = Tokens.from_settings(shop_settings.model_copy(update={"auth_secret": None, "demo": True}))
    assert demo.customer(demo.issue("1111")) == "1111"


def test_conversation_of_another_customer_is_not_reused(services, api_settings):
    llm = ScriptedLLM([reading(product="milk"), reading(intent="order_status")])
    client = client_for(services, llm, api_settings)
    alice = {"Authorization": f"Bearer {sign('1111')}"}
    done = events_of(client.post("/v1/chat", json={"message": "milk"}, headers=alice))[-1][1]
    bob = {"Authorization": f"Bearer {sign('42')}"}
    r = client.post("/v1/chat", json={"message": "my orders", "conversation_id": done["conversation_id"]}, headers=bob)
    assert events_of(r)[-1][1]["conversation_id"] != done["conversation_id"]


def test_profile_is_readable_only_by_its_owner(services, api_settings):
    client = client_for(services, ScriptedLLM(), api_settings)
    token = sign("1111")
    r = client.get("/v1/customers/1111/profile", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["customer_id"] == "1111"
    assert client.get("/v1/customers/42/profile", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert client.get("/v1/customers/1111/profile").status_code == 403


def test_shop_events_update_live_profiles_with_the_shops_key(demo_store, tmp_path_factory, tmp_path):
    from segmentation.profiles import ProfileStore
    from tests.segmentation_fit import copy_of_fit

    settings = copy_of_fit(demo_store, tmp_path_factory.getbasetemp(), tmp_path)
    profiles = ProfileStore.load(settings)
    before = profiles.get("2261")
    order = {
        "customer_id": "2261",
        "ts": "2018-01-03T10:00:00",
        "type": "order",
        "items": [{"product_id": "no-such-product", "amount": 12.5}],
    }

    settings = settings.model_copy(update={"auth_secret": SECRET})
    off = TestClient(create_app(Assistant(fake_services(profiles=profiles), ScriptedLLM()), settings))
    assert off.post("/v1/events", json=order).status_code == 503  # no key set: the endpoint is off

    on = settings.model_copy(update={"events_key": "shop-key"})
    client = TestClient(create_app(Assistant(fake_services(profiles=profiles), ScriptedLLM()), on))
    assert client.post("/v1/events", json=order).status_code == 401
    assert client.post("/v1/events", json=order, headers={"Authorization": "Bearer wrong"}).status_code == 401
    token = sign("2261")  # a shopper's token is not the shop's key
    assert client.post("/v1/events", json=order, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert profiles.get("2261") is before  # nothing changed so far

    key = {"Authorization": "Bearer shop-key"}
    r = client.post("/v1/events", json=order, headers=key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unknown_products"] == ["no-such-product"] and body["profile"]["updated"] == "live"
    assert profiles.get("2261").features["frequency"] == before.features["frequency"] + 1
    bad = client.post("/v1/events", json={**order, "type": "refund"}, headers=key)
    assert bad.status_code == 422 and "type" in bad.text
    assert profiles.get("2261").features["frequency"] == before.features["frequency"] + 1


def test_a_typed_action_is_posted_beside_or_instead_of_words(settings):
    llm = ScriptedLLM([reading(product="cheese")])
    client = client_for(fake_services(), llm, settings.model_copy(update={"auth_secret": SECRET}))
    headers = {"Authorization": f"Bearer {sign('c1')}"}

    def post(body):
        return events_of(client.post("/v1/chat", json=body, headers=headers))

    done = post({"message": "cheese"})[-1][1]
    conversation = done["conversation_id"]
    shown = [p["product_id"] for p in done["products"]]
    assert shown == ["p3", "p4"] and all("reasons" in p and "reason" in p for p in done["products"])
    llm.calls.clear()

    action = {"kind": "similar", "product_id": "p3"}
    events = post({"action": action, "conversation_id": conversation})
    understood = events[0][1]
    assert events[0][0] == "understood" and understood["source"] == "action:similar"
    assert [(d["name"], d["data"]) for k, d in events if k == "tool"] == [
        ("similar_items", {"no_match": None, "alternatives": False, "note": ""})  # the tool's typed data
    ]
    assert not any(kind == "structured" for kind, _ in llm.calls)  # no model reading for an action

    compare = {"kind": "compare", "product_ids": ["p3", "p4"]}
    body = {"message": "Compare these two", "action": compare, "conversation_id": conversation}
    events = post(body)
    assert [d["name"] for k, d in events if k == "tool"] == ["compare_products"]
    assert events[-1][1]["turn"] == 3

    unseen = {"kind": "similar", "product_id": "p1"}  # a real product this conversation never showed
    events = post({"action": unseen, "conversation_id": conversation})
    assert [k for k, _ in events] == ["refused", "done"] and events[0][1]["reason"] == "invalid_action"
    malformed = client.post("/v1/chat", json={"action": {"kind": "teleport"}}, headers=headers)
    assert malformed.status_code == 422 and "kind" in malformed.text
