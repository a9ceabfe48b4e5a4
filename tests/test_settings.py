from pathlib import Path

import pytest
from pydantic import ValidationError

from kefu.settings import Settings


def test_defaults_put_everything_under_data_dir(settings, tmp_path):
    s = Settings()
    assert s.data_dir == Path(".kefu")
    assert s.store_path == Path(".kefu/store.duckdb")
    assert s.model_dir == Path(".kefu/models/smollm2-135m-instruct")
    assert s.llm_base_url == "http://127.0.0.1:8011/v1"
    assert not s.llm_is_external


def test_environment_overrides_with_kefu_prefix(settings, monkeypatch):
    monkeypatch.setenv("KEFU_DATA_DIR", "/srv/shop")
    monkeypatch.setenv("KEFU_LLM_URL", "http://gpu-box:8000/v1/")
    monkeypatch.setenv("KEFU_LLM_PORT", "9000")
    s = Settings()
    assert s.store_path == Path("/srv/shop/store.duckdb")
    assert s.llm_is_external and s.llm_base_url == "http://gpu-box:8000/v1"
    assert s.llm_port == 9000


def test_toml_file_is_read_and_env_wins(settings, monkeypatch, tmp_path):
    (tmp_path / "kefu.toml").write_text('data_dir = "/from/toml"\nllm_served_name = "qwen"\nllm_port = 8100\n')
    monkeypatch.setenv("KEFU_LLM_PORT", "8200")
    s = Settings()
    assert s.data_dir == Path("/from/toml")
    assert s.llm_served_name == "qwen"
    assert s.llm_port == 8200


def test_config_path_from_env(settings, monkeypatch, tmp_path):
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('llm_model = "/models/Qwen2.5-7B-Instruct"\n')
    monkeypatch.setenv("KEFU_CONFIG", str(cfg))
    assert Settings().model_dir == Path("/models/Qwen2.5-7B-Instruct")


def test_unknown_and_mistyped_settings_are_rejected(settings, monkeypatch, tmp_path):
    (tmp_path / "kefu.toml").write_text("llm_prot = 8100\n")
    with pytest.raises(ValidationError, match="llm_prot"):
        Settings()
    (tmp_path / "kefu.toml").write_text('llm_port = "eighty"\n')
    with pytest.raises(ValidationError, match="llm_port"):
        Settings()
