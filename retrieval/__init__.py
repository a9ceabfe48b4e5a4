"""Product retrieval: catalogue index, hybrid search, re-ranking.

Modules, in the order data flows:
- ``catalog``  products as indexed (text, content hash, filter metadata) from the store or any records
- ``dense``    Chroma collection (embedded or ``chroma run`` server), cosine space, our vectors only
- ``lexical``  bm25s with typo and shorthand expansion of unknown query words
- ``indexer``  incremental (re)indexing of both sides: only changed texts are embedded, deletions handled
- ``filters``  hard filters: validated, applied on both sides and re-checked on every result
- ``fusion``   convex fusion of min-max normalised BM25 and cosine (one fitted weight), RRF for comparison
- ``hybrid``   ``ProductSearch.search``: both sides, fusion, filtered dense search by HNSW over-fetch, reasons,
               browse without a query
- ``beir``     judged queries in BEIR layout, and the seeded held-out split eval and tuning share
- ``tune``     fine-tune the embedder on judged (query, product) pairs; fit the fusion weight
- ``reasons``  ``Reason(kind, text)``: why a product is in a result, its rank and score apart from the text
- ``rerank``   ``ShopperProfile`` from the store and a bounded, explained personal boost
- ``related``  ``similar_items`` (embedding neighbours) and ``bought_together`` (basket co-occurrence)
- ``cli``      ``kefu index`` (``kefu index tune``), ``kefu search``, ``kefu similar``, ``kefu bought-together``
Embeddings come from ``kefu.embedder`` (the packaged all-MiniLM-L6-v2, shared with segmentation).
Evaluation lives in ``eval/retrieval.py`` (BEIR) and ``bench/search_speed.py`` (throughput, latency).
"""
