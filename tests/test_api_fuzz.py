"""The HTTP API fuzzed from its own OpenAPI schema with schemathesis (in-process, against the ASGI app of
`kefu serve`: ``/v1/…``, ``/health``, ``/staff``): every route, anonymous and signed in (a shopper's session
token; the shop's events key on ``/v1/events``), schema-valid and schema-violating cases: no 500, and every
response matches what the schema declares (status codes, content type, headers, body).

Bounded: ``MAX_EXAMPLES`` cases per route, mode and sign-in (about a minute on 2 cores). ``/v1/chat`` runs whole
turns, so it is fuzzed with fewer cases against the served model and the real services (``llm``); the other
routes never reach a model (their assistant holds a scripted one; the services, the fitted segmentation and
the records database are real).

Cases come from ``APIOperation.as_strategy`` under Hypothesis' ``given``, inside ordinary tests: schemathesis'
fixture-based loader (``schemathesis.pytest.from_fixture``) reads ``request.node._nodeid``, which pytest 9.2
no longer has. Findings and their focused tests: test_api_hardening.py.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from assistant.loop import Assistant
from kefu.llm.client import LLM
from kefu.settings import Settings
from tests.conftest import real_services
from tests.fake_llm import ScriptedLLM
from ui.auth import Tokens
from ui.web import create_web_app

SECRET = "fuzz-test-secret-0123456789"
EVENTS_KEY = "fuzz-events-key"
TOKEN_KEY = "fuzz-token-key"
CUSTOMER = "1111"
MAX_EXAMPLES = 25
CHAT_EXAMPLES = 5
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
# A schema-violating request may also be refused for its size (413, before anything parses it).
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422,
                                                                   428, 429]}}}
)  # fmt: skip


def fuzz_settings(base: Settings, data) -> Settings:
    return base.model_copy(
        update={"auth_secret": SECRET, "events_key": EVENTS_KEY, "agent_key": "fuzz-agent-key", "data_dir": data,
                "token_key": TOKEN_KEY,
                "rate_limit_per_address_per_minute": 100_000, "rate_limit_per_customer_per_minute": 100_000}
    )  # fmt: skip


def sign_in(case) -> None:
    """Signed in: the events key on /v1/events; else a session token for the customer the path names (so the
    real profile lookup runs for whatever id is generated) when it could be one, or for a demo customer."""
    if case.path == "/v1/events":
        token = EVENTS_KEY
    elif case.path == "/v1/tokens":  # the shop's back end, with its key
        token = TOKEN_KEY
    else:
        tokens, named = Tokens(SECRET, 3600), unquote((case.path_parameters or {}).get("customer_id") or "")
        try:
            token = tokens.issue(named if named.isascii() else "")  # a header carries ASCII (latin-1 at most)
        except ValueError:  # no id, or not one a token can carry (over 64 characters, unprintable)
            token = tokens.issue(CUSTOMER)
    case.headers = {**(case.headers or {}), "authorization": f"Bearer {token}"}


def accepted_unless_totals_disagree(ctx, response, case):
    """Schema-valid requests are accepted, except an order whose totals disagree with its items (a sum no JSON
    schema states; the 422 says what to fix)."""
    if case.path == "/v1/events" and response.status_code == 422 and "disagrees with the items" in response.text:
        return None
    return positive_data_acceptance(ctx, response, case)


def rejected_unless_a_local_time(ctx, response, case):
    """Schema-violating requests are refused, except an event time without an offset: the schema's "date-time"
    needs one, while the store's local times are accepted without (README: the events API)."""
    try:
        return negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData as failure:
        ts = case.body.get("ts") if isinstance(case.body, dict) else None
        if "`format` at /properties/ts" in str(failure) and isinstance(ts, str) and LOCAL_TIME.fullmatch(ts):
            return None
        raise


LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def fuzz(schema, signed_in: bool, max_examples: int) -> list[str]:
    """Run every operation of ``schema``: schema-valid cases, and schema-violating bodies where it takes one (a
    header, query or path value here is a string of any form: there is nothing to violate); returns the
    operations it ran."""
    ran = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in MODES if len(operation.body) else MODES[:1]:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)  # fmt: skip
            def run(case):
                if signed_in:
                    sign_in(case)
                case.call_and_validate(  # the route's own answer, not where a redirect points
                    allow_redirects=False,
                    excluded_checks=[positive_data_acceptance, negative_data_rejection],
                    additional_checks=[accepted_unless_totals_disagree, rejected_unless_a_local_time],
                )

            run()
        ran.append(operation.label)
    return ran


@pytest.fixture(scope="module")
def api_schema(shop_settings, demo_store, tmp_path_factory):
    """The app over the real services (the indexed demo shop, a fitted segmentation that records the events,
    a records database) with a scripted model these routes never call."""
    from segmentation.profiles import ProfileStore
    from tests.segmentation_fit import copy_of_fit

    data = tmp_path_factory.mktemp("fuzz")
    profiles = ProfileStore.load(copy_of_fit(demo_store, tmp_path_factory.mktemp("fit"), data))
    assistant = Assistant(real_services(shop_settings, data / "records.sqlite", profiles), ScriptedLLM())
    app = create_web_app(fuzz_settings(shop_settings, data), assistant)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG).exclude(path="/v1/chat")


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_every_route_answers_within_its_schema(api_schema, signed_in):
    ran = fuzz(api_schema, signed_in, MAX_EXAMPLES)
    assert set(ran) >= {"GET /v1/customers/{customer_id}/profile", "POST /v1/events", "GET /health",
                        "GET /staff", "POST /staff", "POST /v1/tokens"}  # fmt: skip


@pytest.fixture(scope="module")
def chat_schema(llm_settings, shop_settings, tmp_path_factory):
    data = tmp_path_factory.mktemp("fuzz-chat")
    assistant = Assistant(real_services(shop_settings, data / "records.sqlite"), LLM.from_settings(llm_settings))
    app = create_web_app(fuzz_settings(llm_settings, data), assistant)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG).include(path="/v1/chat")


@pytest.mark.llm
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_chat_answers_within_its_schema_with_the_real_model(chat_schema, signed_in):
    assert fuzz(chat_schema, signed_in, CHAT_EXAMPLES) == ["POST /v1/chat"]
