"""Profile read and update latency of ``segmentation.profiles.ProfileStore`` over a fitted data dir.

    KEFU_DATA_DIR=.kefu .venv/bin/python bench/profiles.py [--reads 20000] [--updates 500] [--threads 8]

Prints JSON: load time, single-thread get() p50/p99/max, get() under concurrent readers and one writer, and
record() p50/p99 for orders given as totals and for orders given with 5 real product lines (looked up in the store).
Updates go to a copy of the data dir (the fitted one is not touched). Needs `kefu segment fit`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

from kefu.settings import Settings  # noqa: E402
from segmentation.profiles import OrderLine, ProfileEvent, ProfileStore  # noqa: E402


def percentiles(samples_s: list[float]) -> dict:
    ms = np.array(samples_s) * 1000
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "max_ms": round(float(ms.max()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=20000)
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    source = Settings().data_dir
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data / "segments").mkdir(parents=True)
        shutil.copy(source / "segments.duckdb", data)
        shutil.copy(source / "store.duckdb", data)
        for f in (source / "segments").iterdir():
            if f.is_file() and f.suffix in {".json", ".npz", ".joblib"} and f.name != "title_embeddings.npz":
                shutil.copy(f, data / "segments")
        settings = Settings(data_dir=data)
        t0 = time.perf_counter()
        store = ProfileStore.load(settings)
        load_s = time.perf_counter() - t0
        ids = sorted(store._profiles)
        rng = random.Random(0)
        reads = []
        for _ in range(args.reads):
            cid = rng.choice(ids)
            t = time.perf_counter()
            store.get(cid)
            reads.append(time.perf_counter() - t)
        updates = []
        for i in range(args.updates):
            event = ProfileEvent(
                customer_id=rng.choice(ids),
                type="order",
                amount=round(rng.uniform(1, 80), 2),
                lines=rng.randint(1, 9),
                ts=datetime(2018, 1, 2) + timedelta(minutes=i),
            )
            t = time.perf_counter()
            store.record(event)
            updates.append(time.perf_counter() - t)
        with duckdb.connect(str(settings.store_path), read_only=True) as con:
            products = [r[0] for r in con.execute("SELECT product_id FROM products WHERE price IS NOT NULL").fetchall()]
        with_lines = []
        for i in range(args.updates):
            items = [OrderLine(product_id=rng.choice(products), amount=round(rng.uniform(0.5, 9), 2)) for _ in range(5)]
            event = ProfileEvent(
                customer_id=rng.choice(ids), type="order", items=items, ts=datetime(2018, 1, 4) + timedelta(minutes=i)
            )
            t = time.perf_counter()
            store.record(event)
            with_lines.append(time.perf_counter() - t)
        concurrent: list[float] = []
        lock = threading.Lock()

        def reader() -> None:
            mine = []
            for _ in range(args.reads // args.threads):
                cid = rng.choice(ids)
                t = time.perf_counter()
                store.get(cid)
                mine.append(time.perf_counter() - t)
            with lock:
                concurrent.extend(mine)

        def writer() -> None:
            for i in range(100):
                store.record(
                    ProfileEvent(
                        customer_id=ids[i],
                        type="order",
                        amount=5.0,
                        lines=1,
                        ts=datetime(2018, 1, 3) + timedelta(minutes=i),
                    )
                )

        threads = [threading.Thread(target=reader) for _ in range(args.threads)] + [threading.Thread(target=writer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(
            json.dumps(
                {
                    "customers": len(store),
                    "load_s": round(load_s, 3),
                    "get": percentiles(reads),
                    "get_concurrent": {**percentiles(concurrent), "readers": args.threads, "writers": 1},
                    "record": percentiles(updates),
                    "record_with_5_lines": percentiles(with_lines),
                    "target_get_ms": 10,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
