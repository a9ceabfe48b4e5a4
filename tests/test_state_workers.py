"""Two real `kefu serve` workers (A and B, their own processes and ports) sharing one Redis (started here) and the
session's real vLLM by URL, as behind a load balancer: a conversation started on A continues on B; two turns of
one conversation at once on A and B are serialised (the second is a 409 at once); a copilot message sent through
B's page reaches the shopper's page on A; a customer's rate limit counts across both; killing A mid-turn leaves
B able to continue once the lease lapses; Redis stopped is a 503 with a clear message, and restarted, served."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import REPO, free_port
from tests.redis_server import RedisServer
from ui.auth import Tokens

SECRET = "workers-test-secret-0123456789"
LEASE_S = 3
CUSTOMER = "1111"
SERVE = "from ui.cli import main; main()"  # `kefu serve` from this checkout
pytestmark = pytest.mark.llm


class Worker:
    def __init__(self, name: str, env: dict[str, str], log_dir) -> None:
        self.name, self.port = name, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / f"worker-{name}.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--no-start-llm", "--demo"],
                                     env={**env, "KEFU_UI_PORT": str(self.port)}, cwd=REPO, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def wait(self, timeout_s: float = 240) -> Worker:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"worker {self.name} exited: see {self.log.name}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/health", timeout=2).json().get("assistant"):
                    return self
            time.sleep(0.5)
        raise AssertionError(f"worker {self.name} did not come up in {timeout_s} s")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture(scope="module")
def cluster(shop_settings, llm_settings, tmp_path_factory):
    """Redis, then workers A and B over the test shop (one data dir: one records database) and the real vLLM."""
    folder = tmp_path_factory.mktemp("workers")
    redis_server = RedisServer(folder / "redis").start()
    data = folder / "data"
    data.mkdir()
    for name in ("store.duckdb", "index"):
        (data / name).symlink_to(shop_settings.data_dir / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env.update(KEFU_DATA_DIR=str(data), KEFU_LLM_URL=llm_settings.llm_base_url, KEFU_AUTH_SECRET=SECRET,
               KEFU_LLM_SERVED_NAME=llm_settings.llm_served_name, KEFU_STATE_URL=redis_server.url,
               KEFU_STATE_LEASE_S=str(LEASE_S), KEFU_RATE_LIMIT_PER_CUSTOMER_PER_MINUTE="12",
               PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")  # fmt: skip
    workers = [Worker("A", env, folder), Worker("B", env, folder)]
    try:
        a, b = (w.wait() for w in workers)
        yield a, b, redis_server
    finally:
        for w in workers:
            w.stop()
        redis_server.stop()


def headers(customer: str = CUSTOMER) -> dict[str, str]:
    return {"Authorization": f"Bearer {Tokens(SECRET, 3600).issue(customer)}"}


def events_of(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def chat(worker: Worker, message: str, conversation_id: str | None = None, customer: str = CUSTOMER):
    return httpx.post(worker.base + "/v1/chat", json={"message": message, "conversation_id": conversation_id},
                      headers=headers(customer), timeout=180)  # fmt: skip


def done_of(response) -> dict:
    assert response.status_code == 200, response.text
    return events_of(response.text)[-1][1]


def test_a_conversation_started_on_a_continues_on_b(cluster):
    a, b, _ = cluster
    first = chat(a, "crackers under $4")
    done = done_of(first)
    assert done["turn"] == 1 and len(done["products"]) >= 2
    cheapest = min(p["price"] for p in done["products"])
    second = chat(b, "something cheaper", done["conversation_id"])
    events = events_of(second.text)
    again = events[-1][1]
    assert again["conversation_id"] == done["conversation_id"] and again["turn"] == 2  # turn numbers continue
    (search,) = [d for k, d in events if k == "tool" and d["name"] == "search_products"]
    assert "cracker" in search["arguments"]["query"] and search["arguments"]["max_price"] < cheapest  # A's search
    assert all(p["price"] < cheapest for p in again["products"])
    third = done_of(chat(a, "something cheaper", done["conversation_id"]))
    assert third["turn"] == 3  # and back on A


def test_two_turns_of_one_conversation_on_a_and_b_are_serialised(cluster):
    a, b, _ = cluster
    conversation = done_of(chat(a, "pasta"))["conversation_id"]
    with httpx.stream("POST", a.base + "/v1/chat", json={"message": "cheddar cheese", "conversation_id": conversation},
                      headers=headers(), timeout=180) as running:  # fmt: skip
        assert running.status_code == 200  # the headers are out: A's turn holds the lease now
        started = time.monotonic()
        busy = chat(b, "milk", conversation)
        assert time.monotonic() - started < 2  # refused at once: no thread of B waits for A's turn
        assert busy.status_code == 409 and "still answering its previous message" in busy.json()["detail"]
        assert busy.headers["retry-after"]
        text = running.read().decode()
    assert events_of(text)[-1][1]["turn"] == 2
    assert done_of(chat(b, "milk", conversation))["turn"] == 3  # free once A's turn finished


def test_a_copilot_message_sent_through_b_reaches_the_shopper_polling_a(cluster):
    from tests.browser import chromium

    a, b, redis_server = cluster
    import redis

    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    before = set(r.zrange("kefu:guest:live", 0, -1))
    with chromium() as browser:
        shopper = browser.new_page()
        shopper.goto(a.base + "/")
        shopper.fill("#kefu-input textarea", "pasta")
        shopper.click("#kefu-send")
        deadline = time.monotonic() + 120
        while not (new := set(r.zrange("kefu:guest:live", 0, -1)) - before) and time.monotonic() < deadline:
            time.sleep(0.3)
        (conversation,) = new
        while r.exists(f"kefu:lease:{conversation}") or not r.llen(f"kefu:guest:turns:{conversation}"):
            assert time.monotonic() < deadline, "the shopper's turn on A did not finish"
            time.sleep(0.3)
        agent = browser.new_page(viewport={"width": 1500, "height": 1200})
        agent.goto(b.base + "/copilot/")
        agent.fill("#copilot-selected input, #copilot-selected textarea", conversation)
        agent.press("#copilot-selected input, #copilot-selected textarea", "Enter")
        agent.locator("#copilot-timeline", has_text="pasta").wait_for(timeout=60_000)  # B reads A's turn
        agent.fill("#copilot-suggestion-0 textarea", "Hello from agent Bea on worker B.")
        agent.click("#copilot-send-0")
        agent.locator("#copilot-sent", has_text="Sent to the shopper").wait_for(timeout=30_000)
        shopper.locator("#kefu-chat", has_text="Support agent: Hello from agent Bea on worker B.").wait_for(
            timeout=30_000
        )  # A's page polled it from Redis


def test_a_customers_rate_limit_counts_across_workers(cluster):
    a, b, _ = cluster
    customer = "2222"  # a customer of its own: a cap of 12 a minute (KEFU_RATE_LIMIT_PER_CUSTOMER_PER_MINUTE)
    token = headers(customer)
    statuses = []
    for i in range(14):
        worker = (a, b)[i % 2]
        r = httpx.post(worker.base + "/v1/chat", json={"message": ""}, headers=token, timeout=60)  # empty: no model
        statuses.append(r.status_code)
    assert statuses[:12] == [200] * 12 and statuses[12:] == [429, 429]  # 6 on each worker, yet the 13th is refused
    assert chat(a, "", customer="3333").status_code == 200  # another customer is counted apart


def test_redis_stopped_is_a_503_and_restarted_is_served(cluster):
    a, b, redis_server = cluster
    redis_server.stop()
    try:
        for worker in (a, b):
            r = chat(worker, "pasta")
            assert r.status_code == 503, r.text
            assert "shared state store (Redis" in r.json()["detail"] and "Start Redis" in r.json()["detail"]
    finally:
        redis_server.start()  # the same port
    done = done_of(chat(b, "pasta"))
    assert done["turn"] == 1 and done_of(chat(a, "something cheaper", done["conversation_id"]))["turn"] == 2


def test_killing_a_mid_turn_leaves_b_to_continue_after_the_lease(cluster):
    a, b, _ = cluster  # runs last in this module: A does not come back
    done = done_of(chat(a, "crackers"))
    conversation = done["conversation_id"]
    with httpx.stream("POST", a.base + "/v1/chat", json={"message": "cheddar cheese", "conversation_id": conversation},
                      headers=headers(), timeout=180) as running:  # fmt: skip
        assert running.status_code == 200  # A's turn holds the lease
        a.kill()  # mid-turn: the lease stays in Redis, nobody renews it
        killed = time.monotonic()
    busy = chat(b, "milk", conversation)
    assert busy.status_code == 409  # still leased by the dead A
    time.sleep(max(0.0, LEASE_S + 0.5 - (time.monotonic() - killed)))
    after = done_of(chat(b, "milk", conversation))
    assert after["conversation_id"] == conversation and after["turn"] == 2  # A's unfinished turn is lost, no more
