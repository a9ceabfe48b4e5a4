"""vLLM lifecycle logic (start, health wait, status, stop, parent death) with a stand-in server process."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kefu.errors import ServerError
from kefu.llm import server as vllm_server
from kefu.settings import Settings
from tests.conftest import free_port

FAKE = str(Path(__file__).with_name("fake_vllm.py"))


@pytest.fixture
def lifecycle(settings, monkeypatch):
    model = settings.data_dir / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    s = settings.model_copy(update={"llm_model": str(model), "llm_port": free_port(), "llm_startup_timeout_s": 20})
    monkeypatch.setattr(vllm_server, "command", lambda st: [sys.executable, FAKE, str(st.llm_port), "1"])
    yield s
    vllm_server.stop(s, timeout_s=5)


def test_start_waits_for_health_then_status_and_stop(lifecycle):
    info = vllm_server.start(lifecycle)
    assert vllm_server.is_healthy(info.base_url)
    state = vllm_server.status(lifecycle)
    assert state["running"] and state["healthy"] and state["pid"] == info.pid
    assert vllm_server.start(lifecycle).pid == info.pid  # already running: reused, not started twice
    assert vllm_server.stop(lifecycle)
    assert not vllm_server.is_healthy(info.base_url)
    assert vllm_server.status(lifecycle) == {
        "managed": True,
        "running": False,
        "base_url": lifecycle.llm_base_url,
        "healthy": False,
    }
    assert not vllm_server.stop(lifecycle)


def test_a_server_launched_in_the_background_is_waited_for_later(lifecycle, monkeypatch):
    """`kefu llm serve --background` returns at once; `kefu llm wait` (or `kefu serve`) waits for it later."""
    monkeypatch.setattr(vllm_server, "command", lambda st: [sys.executable, FAKE, str(st.llm_port), "2"])
    began = time.monotonic()
    info = vllm_server.start(lifecycle, wait=False)
    assert time.monotonic() - began < 1.5 and not vllm_server.is_healthy(info.base_url)
    assert vllm_server.starting(lifecycle).pid == info.pid
    assert vllm_server.start(lifecycle, wait=False).pid == info.pid  # still starting: not launched twice
    waited: list[float] = []
    assert vllm_server.wait_started(lifecycle, on_wait=waited.append).pid == info.pid
    assert waited and vllm_server.is_healthy(info.base_url)


def test_waiting_for_a_background_server_that_died_reports_its_log(lifecycle, monkeypatch):
    with pytest.raises(ServerError, match="No managed vLLM server was started"):
        vllm_server.wait_started(lifecycle)
    monkeypatch.setattr(vllm_server, "command", lambda st: [sys.executable, FAKE, str(st.llm_port), "0", "fail"])
    vllm_server.start(lifecycle, wait=False)
    with pytest.raises(ServerError, match="CUDA out of memory"):
        vllm_server.wait_started(lifecycle)
    assert vllm_server.read_info(lifecycle) is None


def test_early_exit_reports_the_log_tail(lifecycle, monkeypatch):
    monkeypatch.setattr(vllm_server, "command", lambda st: [sys.executable, FAKE, str(st.llm_port), "0", "fail"])
    with pytest.raises(ServerError, match="CUDA out of memory"):
        vllm_server.start(lifecycle)
    assert vllm_server.read_info(lifecycle) is None


def test_missing_model_and_taken_port_are_clear_errors(lifecycle):
    with pytest.raises(ServerError, match="kefu llm prepare"):
        vllm_server.start(lifecycle.model_copy(update={"llm_model": str(lifecycle.data_dir / "nope")}))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", lifecycle.llm_port))
        s.listen()
        with pytest.raises(ServerError, match="KEFU_LLM_PORT"):
            vllm_server.start(lifecycle)


def test_external_url_starts_nothing(lifecycle):
    with pytest.raises(ServerError, match="KEFU_LLM_URL"):
        vllm_server.start(lifecycle.model_copy(update={"llm_url": "http://127.0.0.1:1/v1"}))


def test_server_dies_with_its_parent(lifecycle, tmp_path):
    """A parent that started the server (not detached) and is killed takes the server with it."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from kefu.llm import server as vllm_server
        from kefu.settings import Settings
        vllm_server.command = lambda st: [sys.executable, {FAKE!r}, str(st.llm_port), "0"]
        s = Settings.model_validate_json({lifecycle.model_dump_json()!r})
        info = vllm_server.start(s)
        print(info.pid, flush=True)
        time.sleep(60)
    """)
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and vllm_server._alive(child_pid):
        time.sleep(0.1)
    assert not vllm_server._alive(child_pid)


def test_python_m_kefu_llm_runs_the_llm_commands_alone(settings):
    """`make demo` launches and waits for vLLM with `python -m kefu.llm` (without the other packages' imports)."""
    env = {**os.environ, "KEFU_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(Path(__file__).parent.parent)}
    run = [sys.executable, "-m", "kefu.llm"]
    status = subprocess.run([*run, "status"], env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 1 and "not running" in status.stderr
    waited = subprocess.run([*run, "wait"], env=env, capture_output=True, text=True, timeout=120)
    assert waited.returncode == 2 and "No managed vLLM server was started" in waited.stderr
    code = "import sys, kefu.llm.__main__; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('assistant', 'retrieval', 'segmentation', 'eval', 'ui', 'gradio', 'torch')))"  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert loaded.stdout.strip() == "[]"


def test_the_server_compiles_unless_told_not_to(tmp_path):
    """KEFU_LLM_COMPILE=false (what `make demo` sets) starts vLLM with --enforce-eager; the default compiles."""
    assert "--enforce-eager" not in vllm_server.command(Settings(data_dir=tmp_path))
    eager = vllm_server.command(Settings(data_dir=tmp_path, llm_compile=False))
    assert eager.count("--enforce-eager") == 1 and eager[eager.index("--model") + 1].endswith("smollm2-135m-instruct")
