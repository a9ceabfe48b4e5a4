"""Load: N concurrent shopper sessions for a while against `kefu serve` on loopback, over the HTTP API: one
worker (in-process state), or several workers sharing state in Redis (``--workers 1,2`` runs both, one after the
other, in the same run; Redis is started here on a free port with Debian's redis-server, and stopped).
With several workers each session sends its turns to the workers in turn (no stickiness at all: turn k of a
session goes to worker (session + k) mod N), so every conversation moves between workers all the time.

Starts `kefu serve` itself (its own secret, the configured data dir and LLM: set KEFU_LLM_URL to reuse a running
vLLM), signs one token per session for a distinct real customer, and has each session loop through a script of
shopping and order messages on its own conversation. Checks every reply for cross-talk: the conversation id stays
the session's own, order ids shown belong to that session's customer (from the store), and "the second one"
resolves to a product that session was shown. Prints JSON: turns/s, turn p50/p95, status counts (the rate
limit's 429 apart), cross-talk count, and the server's resident memory over time.

All shoppers come from one loopback address here, so the per-address limit is raised for the run
(KEFU_RATE_LIMIT_PER_ADDRESS_PER_MINUTE); the per-customer and per-conversation limits stay as configured.

    python bench/load.py --sessions 50 --seconds 300
    python bench/load.py --sessions 8 --seconds 60 --workers 1,2    # one worker beside two (KEFU_LLM_URL: one vLLM)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx

from assistant.shop import StoreOrders
from kefu.settings import Settings
from ui.auth import Tokens

SCRIPT = [
    "crackers under $4",
    "tell me about the second one",
    "something cheaper",
    "show my recent orders",
    "pasta",
    "where is my order?",
    "cheddar cheese",
    "milk under $4",
]
SECRET = "load-bench-secret-" + os.urandom(8).hex()


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (vLLM excluded: it is not a child when KEFU_LLM_URL is set)."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/status").read_text().split("VmRSS:")[1].split()
            total += int(fields[0])
        except (OSError, IndexError):
            pass
    return round(total / 1024, 1)


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def events_of(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


async def session(i: int, clients: list[httpx.AsyncClient], token: str, customer: str, store: dict,
                  stop_at: float, stats: dict) -> None:  # fmt: skip
    orders, all_orders, campaigns = store["orders"], store["all_orders"], store["campaigns"]
    conversation, shown, n = None, set(), 0
    while time.monotonic() < stop_at:
        message = SCRIPT[n % len(SCRIPT)]
        n += 1
        t0 = time.perf_counter()
        client = clients[(i + n) % len(clients)]
        try:
            r = await client.post("/v1/chat", json={"message": message, "conversation_id": conversation},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=180)  # fmt: skip
        except httpx.HTTPError as exc:
            stats["errors"].append(f"{type(exc).__name__}: {exc}")
            continue
        stats["status"][r.status_code] = stats["status"].get(r.status_code, 0) + 1
        if r.status_code in (409, 429):  # 409: this session's previous turn still runs (cannot happen here)
            await asyncio.sleep(float(r.headers.get("retry-after", "5")) / 6)
            continue
        if r.status_code != 200:
            stats["errors"].append(f"{r.status_code}: {r.text[:200]}")
            continue
        events = events_of(r.text)
        done = next((d for k, d in events if k == "done"), None)
        if done is None:
            stats["errors"].append("no done event")
            continue
        stats["latency_ms"].append((time.perf_counter() - t0) * 1000)
        if conversation is not None and done["conversation_id"] != conversation:
            stats["cross_talk"].append(f"session {i}: conversation changed")
        conversation = done["conversation_id"]
        for _, data in (e for e in events if e[0] == "tool"):
            for order_id in data.get("data", {}).get("order_ids", []) or []:
                if order_id not in orders[customer]:
                    stats["cross_talk"].append(f"session {i} ({customer}) was shown order {order_id}")
            if data["name"] in ("compare_products", "similar_items", "bought_together"):
                for pid in data["arguments"].get("product_ids", [data["arguments"].get("product_id")]):
                    if pid and pid not in shown:
                        stats["cross_talk"].append(f"session {i} referred to product {pid} it was never shown")
        for number in re.findall(r"\b\d{11}\b", done["reply"]):  # order ids (coupon UPCs have 11 digits too)
            if number in all_orders and number not in orders[customer]:
                stats["cross_talk"].append(f"session {i} ({customer}) reply names another's order {number}")
        coupon = done.get("coupon")
        if coupon and coupon["campaign_id"] not in campaigns.get(customer, set()):
            stats["cross_talk"].append(f"session {i} ({customer}) was offered campaign {coupon['campaign_id']}")
        shown |= {p["product_id"] for p in done["products"]}


async def run(args: argparse.Namespace, bases: list[str], customers: list[str], store: dict, pids: list[int]) -> dict:
    tokens = Tokens(SECRET, 3600)
    stats: dict = {"status": {}, "errors": [], "latency_ms": [], "cross_talk": []}
    memory: list[tuple[float, float]] = []
    start = time.monotonic()
    stop_at = start + args.seconds

    async def sample() -> None:
        while time.monotonic() < stop_at + 5:
            memory.append((round(time.monotonic() - start), sum(rss_mb(p) for p in pids)))
            await asyncio.sleep(10)

    limits = httpx.Limits(max_connections=args.sessions + 5)
    clients = [httpx.AsyncClient(base_url=base, limits=limits) for base in bases]
    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(session(i, clients, tokens.issue(c), c, store, stop_at, stats)
                           for i, c in enumerate(customers)))  # fmt: skip
    await sampler
    for client in clients:
        await client.aclose()
    elapsed = time.monotonic() - start
    lat = sorted(stats["latency_ms"])
    first = statistics.median(m for t, m in memory if t <= 60) if memory else None
    last = statistics.median(m for t, m in memory if t >= memory[-1][0] - 60) if memory else None
    return {
        "workers": len(bases),
        "sessions": args.sessions,
        "seconds": round(elapsed, 1),
        "turns": len(lat),
        "turns_per_s": round(len(lat) / elapsed, 2),
        "turn_p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
        "turn_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
        "status": stats["status"],
        "rate_limited_429": stats["status"].get(429, 0),
        "errors_other_than_429": len(stats["errors"]),
        "error_samples": stats["errors"][:5],
        "cross_talk": len(stats["cross_talk"]),
        "cross_talk_samples": stats["cross_talk"][:5],
        "busy_409": stats["status"].get(409, 0),
        "server_rss_mb": {"first_minute_median": first, "last_minute_median": last, "samples": memory},
        "load_average_end": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--port", type=int, default=7870)
    parser.add_argument("--workers", default="1", help="Worker counts to run, one after the other, e.g. 1,2")
    args = parser.parse_args()
    settings = Settings()
    customers = StoreOrders(settings.store_path).busiest_customers(args.sessions)
    con = duckdb.connect(str(settings.store_path), read_only=True)
    orders: dict[str, set[str]] = {c: set() for c in customers}
    for c, o in con.execute("SELECT customer_id, order_id FROM orders WHERE customer_id IN (SELECT unnest(?))",
                            [customers]).fetchall():  # fmt: skip
        orders[c].add(o)
    all_orders = {r[0] for r in con.execute("SELECT order_id FROM orders").fetchall()}
    campaigns: dict[str, set[str]] = {}
    for c, k in con.execute("SELECT customer_id, campaign_id FROM campaign_members").fetchall():
        campaigns.setdefault(c, set()).add(k)
    store = {"orders": orders, "all_orders": all_orders, "campaigns": campaigns}
    con.close()
    results = [phase(args, int(n), customers, store) for n in args.workers.split(",")]
    print(json.dumps(results[0] if len(results) == 1 else {"runs": results}, indent=1))


def start_redis(port: int) -> None:
    subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "yes", "--pidfile", f"/tmp/kefu-load-redis-{port}.pid"], check=True)  # fmt: skip


def stop_redis(port: int) -> None:
    pidfile = Path(f"/tmp/kefu-load-redis-{port}.pid")
    if pidfile.exists():
        subprocess.run(["kill", pidfile.read_text().strip()], check=False)
        pidfile.unlink()


def phase(args: argparse.Namespace, workers: int, customers: list[str], store: dict) -> dict:
    """``workers`` fresh `kefu serve` processes (sharing a fresh Redis when more than one), loaded for the run."""
    env = {**os.environ, "KEFU_AUTH_SECRET": SECRET, "KEFU_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "1000000"}
    redis_port = args.port + 100
    if workers > 1:
        start_redis(redis_port)
        env["KEFU_STATE_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    ports = [args.port + w for w in range(workers)]
    serve = [sys.executable, "-c", "from ui.cli import main; main()", "serve", "--no-start-llm"]  # this checkout
    servers = [subprocess.Popen(serve, env={**env, "KEFU_UI_PORT": str(port)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for port in ports]  # fmt: skip
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                try:
                    if httpx.get(base + "/health", timeout=2).json().get("assistant"):
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(1)
            else:
                raise SystemExit(f"kefu serve at {base} did not come up with an assistant in 240 s")
        return asyncio.run(run(args, bases, customers, store, [s.pid for s in servers]))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
        if workers > 1:
            stop_redis(redis_port)


if __name__ == "__main__":
    main()
