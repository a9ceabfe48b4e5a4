"""Browser-test helpers: the whole web server (API + the three pages) on a free loopback port in a thread, and
Debian's headless Chromium driven by Playwright (``executable_path``; `playwright install` cannot download here).
Screenshots go to the test's own output directory (``shots`` fixture in the test files)."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

from kefu.settings import Settings
from tests.conftest import free_port

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Debian's chromium is missing: `make test` installs it (apt-get install -y chromium)")
    return path


@contextlib.contextmanager
def web_server(settings: Settings, assistant=None, server=None) -> Iterator[str]:
    """`kefu serve`'s app on a free port; yields its base URL. Pass ``server`` (``ui.web.build_server``) to keep
    a handle on its hub and tokens, or use ``served``."""
    with served(settings, assistant, server) as (base, _):
        yield base


@contextlib.contextmanager
def served(settings: Settings, assistant=None, server=None) -> Iterator[tuple[str, object]]:
    """`kefu serve`'s app on a free port; yields its base URL and its ``ui.web.Server`` (hub, tokens …)."""
    from ui.web import create_web_app

    port = free_port()
    app = create_web_app(settings.model_copy(update={"ui_port": port}), assistant, server)
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                break
        time.sleep(0.2)
    else:
        raise RuntimeError("the web server did not start")
    try:
        yield base, app.state.server
    finally:
        uv.should_exit = True
        thread.join(timeout=15)


@contextlib.contextmanager
def html_site(html: str, port: int | None = None) -> Iterator[str]:
    """A plain web server answering every GET with ``html`` (a shop's own page, on its own origin); yields its
    base URL."""
    body = html.encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", port or free_port()), Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_port}"
    finally:
        site.shutdown()
        site.server_close()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A Playwright Browser on Debian's headless chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screens_dir(tmp_path_factory) -> Path:
    """Where a browser test saves its screenshots: ``KEFU_TEST_SCREENS`` when set, else the test's output dir."""
    if target := os.environ.get("KEFU_TEST_SCREENS"):
        path = Path(target)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screens")
