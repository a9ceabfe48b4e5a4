"""The real vLLM server with the packaged SmolLM2 model: chat, streaming, structured output, tool calls, stop."""

from typing import Literal

import pytest
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from kefu.errors import LLMError
from kefu.llm import server as vllm_server
from kefu.llm.client import LLM, Usage
from ui.cli import app

pytestmark = pytest.mark.llm


class ShopperRequest(BaseModel):
    intent: Literal["product_search", "order_status", "return_refund", "chitchat"]
    category: str = Field(max_length=60)
    max_price: float | None


def test_chat_reply(llm_settings):
    reply = LLM.from_settings(llm_settings).chat(
        [{"role": "user", "content": "Name one fruit."}], max_tokens=20, temperature=0
    )
    assert reply.text.strip()
    assert 0 < reply.usage.completion_tokens <= 20


def test_streaming_yields_several_chunks(llm_settings):
    chunks = list(
        LLM.from_settings(llm_settings).stream(
            [{"role": "user", "content": "Count from one to ten in words."}], max_tokens=40, temperature=0
        )
    )
    assert len(chunks) > 3
    assert "".join(chunks).strip()


def test_token_counts_come_back_from_the_server(llm_settings):
    llm, usage = LLM.from_settings(llm_settings), Usage()
    chunks = list(
        llm.stream(
            [{"role": "user", "content": "Count from one to ten in words."}],
            max_tokens=12,
            temperature=0,
            usage=usage,
            extra_body={"ignore_eos": True},
        )
    )
    assert chunks and usage.completion_tokens == 12 and usage.prompt_tokens > 5
    streamed = usage.prompt_tokens
    llm.structured(
        [
            {"role": "system", "content": "Extract the shopper's request as JSON."},
            {"role": "user", "content": "I want running shoes under $100"},
        ],
        ShopperRequest,
        temperature=0,
        usage=usage,
    )
    assert usage.prompt_tokens > streamed and usage.completion_tokens > 12


def test_structured_output_validates(llm_settings):
    got = LLM.from_settings(llm_settings).structured(
        [
            {"role": "system", "content": "Extract the shopper's request as JSON."},
            {"role": "user", "content": "I want running shoes under $100"},
        ],
        ShopperRequest,
        temperature=0,
    )
    assert isinstance(got, ShopperRequest)
    assert got.intent in {"product_search", "order_status", "return_refund", "chitchat"}


def test_forced_tool_call_picks_the_tool(llm_settings):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "search_products",
                "description": "Search the shop's catalogue",
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string"}},
                    "required": ["query"],
                },
            },
        }
    ]
    calls, _ = LLM.from_settings(llm_settings).tool_calls(
        [{"role": "user", "content": "find me pasta"}], tools, tool_choice="required", temperature=0
    )
    assert calls and calls[0].name == "search_products"


def test_models_lists_the_served_name(llm_settings):
    assert llm_settings.llm_served_name in LLM.from_settings(llm_settings).models()


def test_status_command_reports_healthy(llm_settings, monkeypatch):
    monkeypatch.setenv("KEFU_DATA_DIR", str(llm_settings.data_dir))
    monkeypatch.setenv("KEFU_LLM_PORT", str(llm_settings.llm_port))
    if llm_settings.llm_url:
        monkeypatch.setenv("KEFU_LLM_URL", llm_settings.llm_url)
    result = CliRunner().invoke(app, ["llm", "status", "--json"])
    assert result.exit_code == 0, result.output
    assert '"healthy": true' in result.output


@pytest.mark.stops_llm
def test_clear_error_after_the_server_is_stopped(llm_settings, monkeypatch):
    if llm_settings.llm_url:
        pytest.skip("external server: not ours to stop")
    assert vllm_server.stop(llm_settings)
    with pytest.raises(LLMError, match="kefu llm serve"):
        LLM(llm_settings.llm_base_url, llm_settings.llm_served_name, retries=0, timeout_s=5).chat(
            [{"role": "user", "content": "hello?"}]
        )
    monkeypatch.setenv("KEFU_DATA_DIR", str(llm_settings.data_dir))
    monkeypatch.setenv("KEFU_LLM_PORT", str(llm_settings.llm_port))
    result = CliRunner().invoke(app, ["llm", "status"])
    assert result.exit_code == 1
