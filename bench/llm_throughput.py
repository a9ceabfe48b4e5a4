"""LLM serving benchmark: vLLM start-up time, single-stream tokens/s and time to first token, and aggregate
tokens/s with N concurrent streams. Prints one JSON object.

Uses the server Kefu is configured for (KEFU_LLM_URL, or the managed one); with --start it starts the managed
server itself and reports how long that took (stopping it afterwards).
Each request generates exactly --tokens tokens (vLLM's ignore_eos), so rates are comparable across runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from kefu.llm import server as vllm_server
from kefu.llm.client import LLM
from kefu.settings import Settings

PROMPT = [{"role": "user", "content": "Describe a good breakfast for a busy family, in detail."}]


def one_stream(llm: LLM, tokens: int) -> dict:
    start = time.perf_counter()
    first = None
    for _ in llm.stream(PROMPT, max_tokens=tokens, temperature=0, extra_body={"ignore_eos": True}):
        first = first or time.perf_counter()
    end = time.perf_counter()
    return {"ttft_s": (first or end) - start, "total_s": end - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--start", action="store_true", help="start the managed vLLM and time it")
    args = parser.parse_args()

    settings = Settings()
    result: dict = {"model": settings.llm_served_name, "base_url": settings.llm_base_url, "tokens": args.tokens}
    started = False
    if args.start and not vllm_server.is_healthy(settings.llm_base_url):
        t0 = time.perf_counter()
        vllm_server.start(settings)
        result["startup_s"] = round(time.perf_counter() - t0, 1)
        started = True
    try:
        llm = LLM.from_settings(settings)
        one_stream(llm, 8)  # warm-up
        singles = [one_stream(llm, args.tokens) for _ in range(args.repeats)]
        result["single"] = {
            "tokens_per_s": round(args.tokens / statistics.median(s["total_s"] for s in singles), 1),
            "ttft_s": round(statistics.median(s["ttft_s"] for s in singles), 3),
        }
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            runs = list(pool.map(lambda _: one_stream(llm, args.tokens), range(args.concurrency)))
        wall = time.perf_counter() - t0
        result["concurrent"] = {
            "streams": args.concurrency,
            "aggregate_tokens_per_s": round(args.concurrency * args.tokens / wall, 1),
            "ttft_p50_s": round(statistics.median(r["ttft_s"] for r in runs), 3),
            "wall_s": round(wall, 2),
        }
        result["concurrent"]["speedup_vs_single"] = round(
            result["concurrent"]["aggregate_tokens_per_s"] / result["single"]["tokens_per_s"], 2
        )
    finally:
        if started:
            vllm_server.stop(settings)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
