"""What one shopper search costs in query embeddings and DuckDB connections: each query runs as a turn runs it
(the scope check's ``carries`` on the words, then ``StoreCatalogue.search`` for a signed-in shopper, a budget on
some), with the real index, embedder and store. Prints JSON: per query the embeddings and connections opened,
and the totals. Works on any commit (it only wraps the embedder and ``duckdb.connect``).

    KEFU_DATA_DIR=... .venv/bin/python bench/search_context.py [--customer 1111]
"""

from __future__ import annotations

import argparse
import json
import threading

import duckdb

import assistant.shop
from assistant.shop import StoreCatalogue
from kefu.settings import Settings
from retrieval.hybrid import ProductSearch
from retrieval.match import MatchRule

ASKS = [  # (words, filters)
    ("pasta", {"max_price": 3.0}),
    ("crackers for the kids", {}),
    ("cheddar cheese", {}),
    ("milk", {"max_price": 4.0}),
    ("a 55 inch tv", {}),
    ("swiss cheese", {"max_price": 0.05}),  # nothing within the budget: the no-match rule searches again without it
]


class Counting:
    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0
        self._lock = threading.Lock()

    def encode_query(self, text: str):
        with self._lock:
            self.calls += 1
        return self.inner.encode_query(text)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customer", default="1111")
    args = parser.parse_args()
    settings = Settings()
    search = ProductSearch.open(settings)
    catalogue = StoreCatalogue(search, settings.store_path, MatchRule.from_settings(settings))
    embedder = search.embedder = Counting(search.embedder)
    real_connect, connects = duckdb.connect, [0]

    def counted(*a, **kw):
        connects[0] += 1
        return real_connect(*a, **kw)

    real_profile, profile_reads = assistant.shop.profile_from_store, [0]

    def profile(con, customer_id):
        profile_reads[0] += 1
        return real_profile(con, customer_id)

    duckdb.connect, assistant.shop.profile_from_store = counted, profile
    rows = []
    for words, filters in ASKS:
        e0, c0, p0 = embedder.calls, connects[0], profile_reads[0]
        catalogue.carries(words)
        found = catalogue.search(words, filters, 5, args.customer)
        rows.append({"query": words, "filters": filters, "no_match": found.no_match, "embeddings": embedder.calls - e0,
                     "connections": connects[0] - c0, "profile_reads": profile_reads[0] - p0})  # fmt: skip
    print(json.dumps({
        "searches": len(rows),
        **{f"{k}_per_search": round(sum(r[k] for r in rows) / len(rows), 2)
           for k in ("embeddings", "connections", "profile_reads")},
        "per_search": rows,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
