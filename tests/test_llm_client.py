"""The LLM client against a scripted fake endpoint: parsing, validation and error mapping."""

import json
from typing import Literal

import pytest
from pydantic import BaseModel

from kefu.errors import LLMError
from kefu.llm.client import LLM
from tests.conftest import free_port
from tests.fake_openai import FakeOpenAI


class Want(BaseModel):
    intent: Literal["product_search", "chitchat"]
    max_price: float | None


@pytest.fixture
def fake():
    server = FakeOpenAI()
    yield server
    server.close()


def client(url: str) -> LLM:
    return LLM(url, "fake-model", timeout_s=5, retries=0)


def test_chat_returns_text_and_usage(fake):
    fake.reply_message("Hello shopper")
    reply = client(fake.url).chat([{"role": "user", "content": "hi"}], max_tokens=10)
    assert reply.text == "Hello shopper"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (5, 7)
    assert fake.requests[0]["model"] == "fake-model" and fake.requests[0]["max_tokens"] == 10


def test_structured_sends_the_json_schema_and_validates(fake):
    fake.reply_message(json.dumps({"intent": "product_search", "max_price": 3}))
    got = client(fake.url).structured([{"role": "user", "content": "pasta under $3"}], Want)
    assert got == Want(intent="product_search", max_price=3.0)
    fmt = fake.requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["properties"]["intent"]["enum"]


@pytest.mark.parametrize("content", ['{"intent": "dance", "max_price": 1}', "not json at all", ""])
def test_structured_rejects_output_outside_the_schema(fake, content):
    fake.reply_message(content)
    with pytest.raises(LLMError, match="does not match Want"):
        client(fake.url).structured([{"role": "user", "content": "x"}], Want)


def test_tool_calls_are_parsed_and_bare_strings_kept(fake):
    fake.reply_message(
        None,
        [
            {
                "id": "1",
                "type": "function",
                "function": {"name": "search_products", "arguments": '{"query": "pasta"}'},
            },
            {"id": "2", "type": "function", "function": {"name": "search_products", "arguments": '"pasta"'}},
        ],
    )
    calls, _ = client(fake.url).tool_calls([{"role": "user", "content": "pasta"}], tools=[], tool_choice="required")
    assert [c.arguments for c in calls] == [{"query": "pasta"}, {"_raw": "pasta"}]


def test_unreachable_server_gives_one_clear_error():
    with pytest.raises(LLMError, match="kefu llm serve") as err:
        client(f"http://127.0.0.1:{free_port()}/v1").chat([{"role": "user", "content": "hi"}])
    assert "KEFU_LLM_URL" in str(err.value)


def test_garbage_and_http_errors_become_llm_errors(fake):
    fake.reply_raw(200, "<html>proxy error</html>")
    with pytest.raises(LLMError):
        client(fake.url).chat([{"role": "user", "content": "hi"}])
    fake.reply_raw(200, json.dumps({"choices": []}))
    with pytest.raises(LLMError, match="no message"):
        client(fake.url).chat([{"role": "user", "content": "hi"}])
    fake.reply_raw(500, json.dumps({"error": {"message": "engine dead"}}))
    with pytest.raises(LLMError, match="HTTP 500"):
        client(fake.url).chat([{"role": "user", "content": "hi"}])
    fake.reply_raw(404, json.dumps({"error": {"message": "model not found"}}))
    with pytest.raises(LLMError, match="KEFU_LLM_SERVED_NAME"):
        client(fake.url).chat([{"role": "user", "content": "hi"}])
