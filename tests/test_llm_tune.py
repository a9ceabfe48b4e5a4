"""`kefu llm tune` end to end, tiny: a dozen examples and a few steps on the CPU -> merged weights and a manifest ->
a second run reuses them -> vLLM serves the tuned folder under its own name -> a structured reading parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.understanding.reading import TurnContext, TurnReading, read_turn
from kefu.llm import prepare as model_prep
from kefu.llm import server as vllm_server
from kefu.llm.client import LLM
from kefu.settings import Settings
from tests.conftest import free_port
from ui.cli import app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tune_settings(demo_store, tmp_path_factory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("tune"), llm_port=free_port(), reader="auto")
    base, _ = model_prep.prepare(REPO / ".kefu" / "models" / "smollm2-135m-instruct")
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / base.name).symlink_to(base)
    settings.store_path.symlink_to(demo_store)
    return settings


def _tune(settings: Settings, *extra: str):
    args = ["llm", "tune", "--examples", "12", "--steps", "3", "--batch", "4", "--json", *extra]
    return CliRunner().invoke(app, args, env={"KEFU_DATA_DIR": str(settings.data_dir)})


@pytest.mark.timeout(1800)  # a tune, then a vLLM start (its own limit: KEFU_LLM_STARTUP_TIMEOUT_S)
def test_a_tiny_tune_is_saved_cached_served_and_reads(tune_settings):
    settings = tune_settings
    first = _tune(settings)
    assert first.exit_code == 0, first.output
    manifest = json.loads((settings.tuned_model_dir / "kefu-manifest.json").read_text())
    assert manifest["base_model"] == "smollm2-135m-instruct" and manifest["steps"] == 3
    assert manifest["examples"] == 12 and len(manifest["data_sha256"]) == 64
    assert manifest["loss_first"] > 0 and (settings.tuned_model_dir / "model.safetensors").is_file()
    assert manifest["excluded_messages"] > 300  # the development set is kept out
    stamp = (settings.tuned_model_dir / "model.safetensors").stat().st_mtime_ns

    again = _tune(settings)
    assert again.exit_code == 0 and "current" in again.output
    assert (settings.tuned_model_dir / "model.safetensors").stat().st_mtime_ns == stamp

    assert settings.reads_tuned and settings.model_dir == settings.tuned_model_dir
    vllm_server.start(settings)
    try:
        llm = LLM.from_settings(settings)
        assert llm.models() == [settings.llm_tuned_name]
        reading = read_turn(llm, "cheap peanut butter under $3", TurnContext())
        assert isinstance(reading, TurnReading)  # three steps teach little: the schema makes it parse
    finally:
        vllm_server.stop(settings)


def test_bad_inputs_say_what_to_do(tune_settings, tmp_path):
    bad = tmp_path / "dev.jsonl"
    bad.write_text('{"id": "x"}\n')
    result = _tune(tune_settings, "--exclude", str(bad), "--force")
    assert result.exit_code != 0 and "line 1" in str(result.exception) and "message" in str(result.exception)
    empty = Settings(data_dir=tmp_path / "none")
    result = CliRunner().invoke(app, ["llm", "tune"], env={"KEFU_DATA_DIR": str(empty.data_dir)})
    assert result.exit_code != 0 and "kefu store build" in str(result.exception)
