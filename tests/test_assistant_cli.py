"""`kefu chat --json` end to end: real store, real index, the model down (so the answer is deterministic)."""

import json

from typer.testing import CliRunner

from tests.conftest import free_port
from ui.cli import app


def test_chat_json_turn_without_the_llm(shop_settings, monkeypatch):
    monkeypatch.setenv("KEFU_DATA_DIR", str(shop_settings.data_dir))
    monkeypatch.setenv("KEFU_LLM_PORT", str(free_port()))  # nothing listens: the LLM is down
    monkeypatch.setenv("KEFU_LLM_RETRIES", "0")
    result = CliRunner().invoke(app, ["chat", "--customer", "1111", "--json", "cheese under $4"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["intent"] == "product_search" and out["slots"]["budget_max"] == 4
    assert out["tools"][0]["name"] == "search_products"
    assert out["products"] and all(p["price"] <= 4 and p["title"] and p["product_id"] for p in out["products"])
    assert set(out["timings_ms"]) >= {"understand_ms", "tools_ms", "total_ms"}


def test_serve_refuses_to_start_without_a_secret_outside_demo_mode(settings, monkeypatch):
    monkeypatch.setenv("KEFU_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(app, ["serve", "--no-start-llm"])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception) and "KEFU_AUTH_SECRET" in str(result.exception)
    assert "kefu serve --demo" in str(result.exception) and "secrets.token_urlsafe" in str(result.exception)


def test_token_command_prints_a_token_the_server_accepts(settings, monkeypatch):
    from ui.auth import Tokens

    monkeypatch.setenv("KEFU_AUTH_SECRET", "cli-test-secret-0123456789")
    result = CliRunner().invoke(app, ["token", "1111"])
    assert result.exit_code == 0, result.output
    assert Tokens("cli-test-secret-0123456789", 3600).customer(result.output.strip()) == "1111"
