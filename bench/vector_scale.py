"""The vector side at a million products: a SYNTHETIC catalogue built into a real `chroma run` server.

The catalogue is synthetic (labelled so in the output). Each synthetic product copies a real demo-store product
(Complete Journey, from the built index: ``make index``) - its metadata as the indexer stores it, with the price
scaled by a random factor in [0.8, 1.2] - and its vector is the real product's title embedding plus Gaussian
noise (``--noise`` per dimension, renormalised: cosine ~0.9 to its source), so the neighbourhoods are the real
catalogue's, the products are not real. Queries are real shopper phrasings embedded by the packaged model.

Measured, in one run:
  build       adding every vector (batches of Chroma's max batch size, over HTTP) to a cosine HNSW collection:
              seconds, vectors per second, the server's peak and settled memory (RSS of `chroma run` and its
              children, sampled every 0.5 s) and its size on disk;
  query       top-10 over HTTP, warm: unfiltered; filtered as every shopper search is (in stock, priced); and
              narrow (one department, a price cap) - p50/p95 wall ms and the share of results that pass the filter;
  exact_scan  the fallback `ProductSearch.exact_candidates` (retrieval/hybrid.py) itself, over a local mirror
              of the same million vectors: a whole-catalogue scan and a narrow filter's gather, p50/p95 ms, and
              the mirror's memory.
Prints one JSON object, with the machine's load average before and after (the host may be shared).

    .venv/bin/python bench/vector_scale.py --size 1000000 --out bench/results/vector-1m.json
    .venv/bin/python bench/vector_scale.py --size 20000          # a quick check of the script
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import psutil

from kefu.embedder import Embedder
from kefu.settings import Settings
from retrieval.catalog import chroma_metadata
from retrieval.hybrid import ProductSearch
from retrieval.indexer import IndexLocation, read_mirror, read_state

QUERIES = [
    "chocolate chip cookies", "cat food", "gluten free pasta", "toilet paper", "orange juice", "frozen pizza",
    "shampoo for dry hair", "baby diapers", "peanut butter", "greek yogurt", "dog treats", "laundry detergent",
    "paper towels", "ice cream", "coffee creamer", "tortilla chips and salsa", "canned soup", "spaghetti sauce",
    "choclate candy", "bannana", "chiken breast", "cerael", "powdered drink mix", "trash bags", "birthday card",
    "vitamins for adults", "cough medicine", "fresh strawberries", "hot dog buns", "ritz crackers family size",
]  # fmt: skip (the list bench/search_speed.py times, so the two compare)
SHOPPER = {"$and": [{"in_stock": True}, {"price": {"$gt": 0.0}}]}  # what every shopper's search carries
NARROW = {"$and": [{"in_stock": True}, {"department": "grocery"}, {"price": {"$lte": 3.0}}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MemorySampler(threading.Thread):
    """Peak RSS (MB) of a process and its children, sampled every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.proc, self.every, self.peak, self.done = psutil.Process(pid), every, 0.0, threading.Event()

    def now(self) -> float:
        procs = [self.proc, *self.proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.peak = max(self.peak, self.now())


def synthetic(size: int, noise: float, seed: int) -> tuple[list[str], np.ndarray, list[dict], int]:
    """(ids, unit vectors, metadata, real products drawn from) of ``size`` synthetic products (see the docstring)."""
    location = IndexLocation.from_settings(Settings())
    df, _ = read_state(location)
    mirror = read_mirror(location)
    base = np.stack([mirror[h] for h in df["text_hash"]]).astype(np.float32)
    rows = df.to_dict("records")
    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(rows), size)
    vectors = np.empty((size, base.shape[1]), dtype=np.float32)
    for start in range(0, size, 100_000):  # in chunks: the noise for a million rows at once would double the peak
        part = source[start : start + 100_000]
        v = base[part] + rng.normal(0.0, noise, (len(part), base.shape[1])).astype(np.float32)
        vectors[start : start + len(part)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    scale = rng.uniform(0.8, 1.2, size)
    metas = []
    for i, r in enumerate(source):
        meta = chroma_metadata(rows[r])
        meta["pid"] = f"syn{i}"
        if "price" in meta:
            meta["price"] = round(meta["price"] * float(scale[i]), 2)
        metas.append(meta)
    return [f"syn{i}" for i in range(size)], vectors, metas, len(rows)


def start_chroma(path: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, f"127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    proc.kill()
    sys.exit(f"`chroma run` did not start; its log: {log}")


def percentiles(ms: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def query_latency(collection, queries: np.ndarray, where: dict | None, metas: dict[str, dict], repeats: int) -> dict:
    for q in queries:  # warm-up
        collection.query(query_embeddings=q.reshape(1, -1), n_results=10, where=where, include=["distances"])
    ms, passing, returned = [], 0, 0
    for _ in range(repeats):
        for q in queries:
            t = time.perf_counter()
            got = collection.query(query_embeddings=q.reshape(1, -1), n_results=10, where=where, include=["distances"])
            ms.append((time.perf_counter() - t) * 1000)
            ids = got["ids"][0]
            returned += len(ids)
            passing += sum(1 for i in ids if where is None or passes(metas[i], where))
    return {**percentiles(ms), "queries": len(ms), "results_per_query": returned / len(ms),
            "share_passing_filter": round(passing / max(returned, 1), 4)}  # fmt: skip


def passes(meta: dict, where: dict) -> bool:
    for clause in where["$and"]:
        (field, cond), = clause.items()
        value = meta.get(field)
        if isinstance(cond, dict):
            (op, bound), = cond.items()
            if value is None or not (value <= bound if op == "$lte" else value > bound):
                return False
        elif value != cond:
            return False
    return True


def exact_scan(vectors: np.ndarray, queries: np.ndarray, metas: list[dict], repeats: int) -> dict:
    """The fallback scan itself (ProductSearch.exact_candidates) over a local mirror of ``vectors``."""
    mirror = SimpleNamespace(vectors=vectors, text_row=np.arange(len(vectors)), catalog=SimpleNamespace(
        ids=[m["pid"] for m in metas]))  # fmt: skip
    out = {"mirror_mb": round(vectors.nbytes / 2**20, 1)}
    masks = {"all": np.ones(len(vectors), dtype=bool),
             "narrow": np.array([passes(m, NARROW) for m in metas])}  # fmt: skip
    for name, mask in masks.items():
        ProductSearch.exact_candidates(mirror, queries[0], 10, mask)  # warm-up
        ms = []
        for _ in range(repeats):
            for q in queries:
                t = time.perf_counter()
                ProductSearch.exact_candidates(mirror, q, 10, mask)
                ms.append((time.perf_counter() - t) * 1000)
        out[name] = {**percentiles(ms), "allowed": int(mask.sum())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.025, help="Gaussian noise per dimension before renorm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="the Chroma data folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    import chromadb  # deferred: the synthetic data is built before the server starts

    report: dict = {"data": "SYNTHETIC: real demo-store products (Complete Journey) copied with noisy vectors and "
                    "scaled prices (see bench/vector_scale.py)", "size": args.size, "machine": {
                    "cpus": os.cpu_count(), "load_before": os.getloadavg()}, "chromadb": chromadb.__version__}  # fmt: skip
    t = time.perf_counter()
    ids, vectors, metas, real = synthetic(args.size, args.noise, args.seed)
    report["generate"] = {"seconds": round(time.perf_counter() - t, 1), "real_products_drawn_from": real}
    queries = Embedder(Settings().embed_model).encode(QUERIES).astype(np.float32)
    work = args.dir or Path(tempfile.mkdtemp(prefix="kefu-vector-scale-"))
    proc, host = start_chroma(work / "chroma", work / "chroma.log")
    try:
        sampler = MemorySampler(proc.pid)
        idle_mb = sampler.now()
        sampler.start()
        client = chromadb.HttpClient(host=host.split(":")[0], port=int(host.split(":")[1]),
                                     settings=chromadb.config.Settings(anonymized_telemetry=False))  # fmt: skip
        collection = client.create_collection("scale", configuration={"hnsw": {"space": "cosine"}},
                                              embedding_function=None)  # fmt: skip
        batch = max(1, min(5000, int(client.get_max_batch_size())))
        t = time.perf_counter()
        for start in range(0, args.size, batch):
            end = start + batch
            collection.add(ids=ids[start:end], embeddings=vectors[start:end], metadatas=metas[start:end])
            if start and start % 100_000 < batch:
                print(f"added {end:,} in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - t
        assert collection.count() == args.size
        time.sleep(5)  # let the server settle (compaction, freed buffers) before the settled figure
        report["build"] = {"seconds": round(seconds, 1), "vectors_per_second": round(args.size / seconds),
                           "batch": batch, "server_idle_mb": round(idle_mb), "server_peak_mb": round(sampler.peak),
                           "server_settled_mb": round(sampler.now()),
                           "disk_mb": round(sum(f.stat().st_size for f in (work / "chroma").rglob("*")
                                                if f.is_file()) / 2**20)}  # fmt: skip
        by_id = dict(zip(ids, metas, strict=True))
        report["query"] = {name: query_latency(collection, queries, where, by_id, args.repeats)
                           for name, where in (("unfiltered", None), ("shopper", SHOPPER), ("narrow", NARROW))}  # fmt: skip
        report["query"]["server_peak_mb"] = round(sampler.peak)
        sampler.done.set()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report["exact_scan"] = exact_scan(vectors, queries, metas, args.repeats)
    report["machine"]["load_after"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
