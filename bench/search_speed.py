"""Retrieval benchmark: indexing throughput and warm query latency (p50/p95, top-10) of bm25, dense and hybrid
search at catalogue sizes of 10k and 100k products. Prints one JSON object.

    .venv/bin/python bench/search_speed.py [--store PATH] [--sizes 10000,100000] [--repeats 3]

Catalogues come from the store's real products (default: the demo store, Complete Journey, 92,331 products).
A size up to the real count is a fixed-seed sample of real products; a larger size adds copies of real products
under new ids ("<id>~r1", ...): those rows are SYNTHETIC (same text, varied ids) and counted in
``synthetic_rows``. Identical texts are embedded once, so ``distinct_texts`` says how much embedding was done.
With ``--index-dir`` the indexes are kept and a rerun only re-measures latency (its ``index_seconds`` is then
the near-zero incremental update, ``embedded`` 0).
Queries: a fixed list of shopper-style queries (some misspelled), each run ``--repeats`` times after one warm-up
pass; ``hybrid_filtered`` adds a price cap and a department filter, ``hybrid_shopper`` the filter every shopper's
search carries (in stock and priced; the assistant's ``IN_STOCK``). ``--fusion convex,learned`` also times the
hybrid searches with learned fusion (``hybrid_learned``, ...; equal weights: the demo store has no judgements to
fit on, and the weights change the order, not the cost). Every query is embedded each time it runs (the search's
query-vector cache is off here). ``p50_ms``/``p95_ms`` are wall time;
``cpu_*`` the CPU time the process spent on the query (all threads), which shared, busy cores do not inflate.
Load average is reported because the machine's cores may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kefu.cache import Recent  # noqa: E402
from kefu.embedder import Embedder  # noqa: E402
from kefu.settings import Settings  # noqa: E402
from kefu.store import connect  # noqa: E402
from retrieval.catalog import catalog_from_store, finish  # noqa: E402
from retrieval.fusion import FEATURES  # noqa: E402
from retrieval.hybrid import FusionConfig, ProductSearch  # noqa: E402
from retrieval.indexer import IndexLocation, build_index  # noqa: E402

QUERIES = [
    "chocolate chip cookies", "cat food", "gluten free pasta", "toilet paper", "orange juice", "frozen pizza",
    "shampoo for dry hair", "baby diapers", "peanut butter", "greek yogurt", "dog treats", "laundry detergent",
    "paper towels", "ice cream", "coffee creamer", "tortilla chips and salsa", "canned soup", "spaghetti sauce",
    "choclate candy", "bannana", "chiken breast", "cerael", "powdered drink mix", "trash bags", "birthday card",
    "vitamins for adults", "cough medicine", "fresh strawberries", "hot dog buns", "ritz crackers family size",
]  # fmt: skip


def catalogue_of_size(real: pd.DataFrame, size: int, seed: int = 0) -> tuple[pd.DataFrame, int]:
    """(catalogue, synthetic rows) of exactly ``size`` products built from the real ones."""
    if size <= len(real):
        return real.sample(n=size, random_state=seed).reset_index(drop=True), 0
    parts, copy = [real], 1
    while sum(len(p) for p in parts) < size:
        extra = real.sample(n=min(len(real), size - sum(len(p) for p in parts)), random_state=seed + copy).copy()
        extra["product_id"] = extra["product_id"] + f"~r{copy}"
        parts.append(extra)
        copy += 1
    df = pd.concat(parts, ignore_index=True)
    return finish(df.drop(columns=["text_hash"])), size - len(real)


def latency(search: ProductSearch, system: str, repeats: int, filters: dict | None = None) -> dict:
    search.query_vectors = Recent(0)  # every repeat embeds its query: a cached vector would time search without it
    for q in QUERIES:  # warm-up
        search.search(q, filters, k=10, system=system)
    times, cpu = [], []
    for _ in range(repeats):
        for q in QUERIES:
            started, cpu_started = time.perf_counter(), time.process_time()
            search.search(q, filters, k=10, system=system)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
        "cpu_p95_ms": round(float(np.percentile(cpu, 95)), 2),
        "queries": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="DuckDB store (default: KEFU settings).")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=None,
        help="Keep the indexes here (SIZE/ per size); a rerun reuses them and re-measures latency.",
    )
    parser.add_argument(
        "--fusion", default="convex", help="Comma-separated hybrid fusions to time: convex, learned, rrf."
    )
    args = parser.parse_args()
    settings = Settings()
    with connect(args.store or settings.store_path) as con:
        real = catalog_from_store(con)
    embedder = Embedder(settings.embed_model)
    out = {"real_products": len(real), "machine_cpus": os.cpu_count(), "sizes": {}}
    for size in [int(s) for s in args.sizes.split(",")]:
        catalog, synthetic = catalogue_of_size(real, size)
        with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
            folder = args.index_dir / str(size) if args.index_dir else Path(tmp)
            location = IndexLocation(folder, f"kefu-bench-{size}")
            report = build_index(catalog, location, embedder)
            search = ProductSearch.open_location(location, embedder)
            result = {
                "products": size,
                "synthetic_rows": synthetic,
                "distinct_texts": int(catalog["text"].nunique()),
                "embedded": report["embedded"],
                "index_seconds": report["seconds"],
                "index_products_per_s": round(size / report["seconds"], 1),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
            for system in ("bm25", "dense"):
                result[system] = latency(search, system, args.repeats)
            for fusion in args.fusion.split(","):
                weights = {name: 1 / len(FEATURES) for name in FEATURES} if fusion == "learned" else None
                fused = ProductSearch.open_location(location, embedder, FusionConfig(fusion=fusion, weights=weights))
                name = "hybrid" if fusion == "convex" else f"hybrid_{fusion}"
                result[name] = latency(fused, "hybrid", args.repeats)
                result[f"{name}_filtered"] = latency(
                    fused, "hybrid", args.repeats, {"max_price": 5, "departments": ["GROCERY"]}
                )
                result[f"{name}_shopper"] = latency(
                    fused, "hybrid", args.repeats, {"in_stock": True, "min_price": 0.01}
                )
            result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
            out["sizes"][str(size)] = result
            print(json.dumps({str(size): result}), file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
