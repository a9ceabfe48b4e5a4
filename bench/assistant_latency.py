"""Assistant latency: full turns (understand + tools + streamed reply) against the configured vLLM server and
product index. Prints JSON: turn p50/p95, time to first reply token p50/p95, per-stage medians, and a run of N
concurrent sessions (errors counted). Uses the settings of the environment (KEFU_*), like `kefu chat`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from assistant.events import TurnDone  # noqa: E402
from assistant.factory import build_assistant  # noqa: E402
from assistant.session import Session  # noqa: E402
from kefu.settings import Settings  # noqa: E402

TURNS = [
    "cheap pasta under $3",
    "something cheaper",
    "crackers for the kids",
    "compare the first two",
    "where is my order?",
    "I'd like some cheddar cheese",
    "recommend me something",
    "milk under $4",
]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def run_session(assistant, customer: str, turns: list[str]) -> list[dict]:
    session, out = Session(customer_id=customer), []
    for text in turns:
        done = [e for e in assistant.turn(session, text) if isinstance(e, TurnDone)][0]
        out.append(done.timings_ms)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customer", default="1111")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    settings = Settings()
    assistant = build_assistant(settings)
    assistant.rate.limit = 10_000
    run_session(assistant, args.customer, TURNS[:1])  # warm-up (loads models)

    timings = run_session(assistant, args.customer, TURNS)
    total = [t["total_ms"] for t in timings]
    first = [t["first_token_ms"] for t in timings if "first_token_ms" in t]
    result = {
        "turns": len(timings),
        "turn_ms": {"p50": pct(total, 0.5), "p95": pct(total, 0.95)},
        "first_token_ms": {"p50": pct(first, 0.5), "p95": pct(first, 0.95)},
        "stage_median_ms": {
            k: round(statistics.median(t.get(k, 0) for t in timings), 1)
            for k in ("understand_ms", "tools_ms", "reply_ms")
        },
    }
    errors, started = 0, time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        futures = [
            pool.submit(run_session, assistant, args.customer, TURNS[i % 4 : i % 4 + 2])
            for i in range(args.concurrency)
        ]
        concurrent = []
        for f in futures:
            try:
                concurrent += f.result()
            except Exception:  # noqa: BLE001 - counted, that is the point
                errors += 1
    ctotal = [t["total_ms"] for t in concurrent]
    result["concurrent"] = {
        "sessions": args.concurrency,
        "turns": len(concurrent),
        "errors": errors,
        "turn_ms_p50": pct(ctotal, 0.5) if ctotal else None,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
