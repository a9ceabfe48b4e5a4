"""What the schemathesis run (test_api_fuzz.py) found, one focused test each: the API's OpenAPI schema now says
what the API does, and responses are checked against it with a JSON-schema validator that checks formats.

1. Routes answered 401/403/404/409/413/429/503 that their schema did not list (ST103 undocumented status code).
2. A 'view' or 'cart' event with ``items`` passed the schema but was refused (ST202): only orders have items,
   and the schema now says so.
3. A recorded event's profile carried ``as_of`` "2018-01-02T00:00:00" against a "date-time" (which needs an
   offset; ST108): the store's local times are now described as what they are.
4. ``/v1/chat`` streams ``text/event-stream`` while its schema promised JSON (ST105); the stream's events are
   now described one by one (``event``: the kind, ``data``: that event's JSON, as a typed model).
5. A chat ``action`` without ``kind`` passed the schema (the kinds' defaults made it optional) but the
   discriminated union refused it (ST202): ``kind`` is now required in the schema.
6. Bodies that are not UTF-8 JSON got FastAPI's 400, and the staff sign-in its 303, neither documented.
7. An event's ``"amount": true`` was taken as 1.0 and ``"ts": -18`` or ``"0"`` as a Unix time (ST201: pydantic's lax
   mode): an event's numbers are JSON numbers and its time is text, as the schema says.
"""

from __future__ import annotations

import json
from datetime import datetime

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from assistant.loop import Assistant
from segmentation.profiles import CustomerProfile, ProfileEvent
from tests.fake_llm import ScriptedLLM
from tests.fake_services import fake_services
from ui.api import create_app
from ui.auth import Tokens

SECRET = "hardening-test-secret-0123456789"


@pytest.fixture
def client(settings):
    settings = settings.model_copy(update={"auth_secret": SECRET})
    return TestClient(create_app(Assistant(fake_services(), ScriptedLLM()), settings))


def documented(client, path: str, method: str) -> set[int]:
    return {int(code) for code in client.get("/openapi.json").json()["paths"][path][method]["responses"]}


def test_every_error_a_route_answers_is_in_its_schema(client, settings):
    token = Tokens(SECRET, 3600).issue("1111")
    profile = "/v1/customers/{customer_id}/profile"
    answers = {
        client.get("/v1/customers/42/profile", headers={"Authorization": f"Bearer {token}"}).status_code,
        client.get("/v1/customers/42/profile", headers={"Authorization": "Bearer 1111.forged"}).status_code,
    }
    assert answers == {403, 401} and answers | {404} <= documented(client, profile, "get")
    event = {"customer_id": "1111", "ts": "2018-01-03T10:00:00", "type": "view"}
    off = client.post("/v1/events", json=event)
    assert off.status_code == 503 and "KEFU_EVENTS_KEY" in off.json()["detail"]
    assert {401, 409, 413, 503} <= documented(client, "/v1/events", "post")
    assert {401, 413, 429} <= documented(client, "/v1/chat", "post")
    problem = client.get("/openapi.json").json()["components"]["schemas"]["Problem"]
    jsonschema_rs.validator_for(problem).validate(off.json())  # the error body is the documented shape


def test_only_orders_have_items_and_the_schema_says_so(settings):
    schema = ProfileEvent.model_json_schema()
    validator = jsonschema_rs.validator_for(schema, validate_formats=True)
    line = {"product_id": "p1", "amount": 2.5}
    cart = {"customer_id": "1111", "ts": "2018-01-03T10:00:00Z", "type": "cart", "items": [line]}
    order = {**cart, "type": "order"}
    assert not validator.is_valid(cart) and validator.is_valid(order)
    client = TestClient(create_app(Assistant(fake_services(), ScriptedLLM()), settings.model_copy(
        update={"auth_secret": SECRET, "events_key": "shop-key"})))  # fmt: skip
    refused = client.post("/v1/events", json=cart, headers={"Authorization": "Bearer shop-key"})
    assert refused.status_code == 422 and "items belong to orders, not to a 'cart' event" in refused.text


def test_a_profiles_local_time_matches_its_schema():
    profile = CustomerProfile(customer_id="1111", as_of=datetime(2018, 1, 2), features={})
    sent = profile.model_dump(mode="json")
    assert sent["as_of"] == "2018-01-02T00:00:00"  # the store's local time, no zone
    schema = CustomerProfile.model_json_schema(mode="serialization")
    jsonschema_rs.validator_for(schema, validate_formats=True).validate(sent)
    assert schema["properties"]["as_of"].get("format") != "date-time"


def test_chat_is_documented_as_a_server_sent_event_stream(client):
    openapi = client.get("/openapi.json").json()
    ok = openapi["paths"]["/v1/chat"]["post"]["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]
    event = ok["content"]["text/event-stream"]["schema"]
    r = client.post("/v1/chat", json={"message": "cheese under $5"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    sent = [dict(line.split(": ", 1) for line in block.splitlines()) for block in r.text.strip().split("\n\n")]
    assert {e["event"] for e in sent} >= {"understood", "tool", "products", "text", "done"}
    for e in sent:  # each event, and its data against the documented model
        jsonschema_rs.validator_for(event).validate(e)
        data = {**event["properties"]["data"]["contentSchema"], "components": openapi["components"]}
        jsonschema_rs.validator_for(data, validate_formats=True).validate(json.loads(e["data"]))


def test_an_action_must_say_its_kind_and_the_schema_says_so(client):
    openapi = client.get("/openapi.json").json()
    request = {"$ref": "#/components/schemas/ChatRequest", "components": openapi["components"]}
    kindless = {"message": "", "action": {"product_ids": ["p3", "p4"]}}
    assert not jsonschema_rs.validator_for(request).is_valid(kindless)
    assert jsonschema_rs.validator_for(request).is_valid({"action": {"kind": "compare", "product_ids": ["p3", "p4"]}})
    refused = client.post("/v1/chat", json=kindless)
    assert refused.status_code == 422 and "kind" in refused.text


def test_unparsable_bodies_and_the_staff_redirect_are_documented(settings):
    from ui.web import create_web_app

    app = create_web_app(settings.model_copy(update={"auth_secret": SECRET, "agent_key": "k-1", "events_key": "e"}),
                         Assistant(fake_services(), ScriptedLLM()))  # fmt: skip
    web = TestClient(app)
    bad = web.post("/v1/events", content=b"\xff\xfe{", headers={"Content-Type": "application/json",
                                                                 "Authorization": "Bearer e"})  # fmt: skip
    assert bad.status_code == 400 and 400 in documented(web, "/v1/events", "post")
    assert 400 in documented(web, "/v1/chat", "post")
    sign_in = web.post("/staff", data={"key": "wrong"}, follow_redirects=False)
    assert sign_in.status_code == 303 and documented(web, "/staff", "post") == {303, 422}


@pytest.mark.parametrize(
    "field, value",
    [
        ("amount", True),
        ("lines", True),
        ("lines", "3"),
        ("amount", "12.5"),
        ("lines", 2.5),
        ("discount", False),
        ("ts", -18),
        ("ts", 1514973600),
    ],  # fmt: skip
)
def test_an_events_numbers_are_numbers(settings, field, value):
    client = TestClient(create_app(Assistant(fake_services(), ScriptedLLM()), settings.model_copy(
        update={"auth_secret": SECRET, "events_key": "shop-key"})))  # fmt: skip
    event = {"customer_id": "1111", "ts": "2018-01-03T10:00:00", "type": "order", field: value}
    refused = client.post("/v1/events", json=event, headers={"Authorization": "Bearer shop-key"})
    assert refused.status_code == 422 and field in refused.text
    line = {"product_id": "p1", "amount": 2, "coupon": 1}  # an int amount is a number; 1 is no boolean
    order = {"customer_id": "1111", "ts": "2018-01-03T10:00:00", "type": "order", "items": [line]}
    refused = client.post("/v1/events", json=order, headers={"Authorization": "Bearer shop-key"})
    assert refused.status_code == 422 and "coupon" in refused.text
    assert ProfileEvent.model_validate({**order, "items": [{**line, "coupon": True}]}).amount == 2.0
    assert ProfileEvent.model_validate({**order, "items": [], "lines": 3.0}).lines == 3  # JSON Schema's integer
