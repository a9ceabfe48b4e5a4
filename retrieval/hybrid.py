"""Hybrid product search: BM25 and dense candidates fused (``fusion.py``: learned weights over normalised scores and
word matches when fitted for the index, else convex or reciprocal-rank fusion), hard filters on both sides and
re-checked on every result, optional personal re-ranking, a reason for each result.

    search = ProductSearch.open(settings)
    search.search("gluten free pasta", {"max_price": 3}, k=10, customer=profile)

``system`` picks "hybrid" (default), "bm25" or "dense" (the evaluator compares the three). An empty query with
at least one filter browses the filtered catalogue by popularity; with no filter it is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from threadpoolctl import ThreadpoolController

from kefu.cache import Recent
from kefu.embedder import Embedder
from kefu.errors import KefuError, SearchIndexError
from retrieval.catalog import Catalog
from retrieval.dense import DenseIndex, chroma_client
from retrieval.filters import Filters
from retrieval.fusion import DEFAULT_DENSE_ALPHA, convex, features, learned, rrf
from retrieval.indexer import REBUILD_HINT, IndexLocation, index_model, read_mirror, read_state
from retrieval.lexical import LexicalIndex, QueryTerms, tokenize, word_matches
from retrieval.reasons import Reason
from retrieval.rerank import ShopperProfile, personal_boost

log = logging.getLogger(__name__)
BLAS = ThreadpoolController()
System = Literal["hybrid", "bm25", "dense"]
CHROMA_DOWN = "The vector server did not answer; meaning-based matches came from the local copy of the index."
Fusion = Literal["auto", "learned", "convex", "rrf"]
MAX_K = 1000
QUERY_VECTORS = 256  # query texts whose embedding is kept (LRU): a turn asks for the same words' vector often


class SearchQueryError(KefuError):
    """The query itself cannot be searched (empty without filters, bad k)."""


@dataclass(frozen=True)
class FusionConfig:
    dense_weight: float = 1.0  # rrf only
    lexical_weight: float = 1.0  # rrf only
    rrf_k: int = 60  # rrf only
    candidates: int = 100  # per side, before fusion and re-ranking
    max_query_chars: int = 1000
    fusion: Fusion = "convex"
    dense_alpha: float | None = None  # convex; None: the index manifest's fitted weight, else DEFAULT_DENSE_ALPHA
    weights: Mapping[str, float] | None = None  # learned; None: the index manifest's fitted weights
    hnsw_overfetch: int = 4  # filtered dense search asks Chroma's HNSW index for candidates x this many
    exact_below: int = 20_000  # ... unless an exact scan would score fewer vectors than this (see use_hnsw)

    @classmethod
    def from_settings(cls, settings) -> FusionConfig:
        return cls(
            dense_weight=settings.search_dense_weight,
            lexical_weight=settings.search_lexical_weight,
            rrf_k=settings.search_rrf_k,
            candidates=settings.search_candidates,
            max_query_chars=settings.search_max_query_chars,
            fusion=settings.search_fusion,
            dense_alpha=settings.search_dense_alpha,
            hnsw_overfetch=settings.search_hnsw_overfetch,
            exact_below=settings.search_exact_below,
        )

    def resolved(self, manifest: Mapping[str, Any]) -> FusionConfig:
        """This config with what the index manifest records filled in, and "auto" decided: learned fusion when
        weights were fitted for the index, else convex when a weight was fitted or set, else rank fusion."""
        config = self
        if config.dense_alpha is None and manifest.get("dense_alpha") is not None:
            config = replace(config, dense_alpha=float(manifest["dense_alpha"]))
        if config.weights is None and manifest.get("fusion_weights"):
            config = replace(config, weights={k: float(v) for k, v in manifest["fusion_weights"].items()})
        if config.fusion == "learned" and config.weights is None:
            raise SearchIndexError(
                "Learned fusion needs weights fitted for this index (`kefu index tune` records them with the "
                "tuned model); set KEFU_SEARCH_FUSION=auto to fall back."
            )
        if config.fusion == "auto":
            fusion = "learned" if config.weights else "convex" if config.dense_alpha is not None else "rrf"
            config = replace(config, fusion=fusion)
        return config

    @property
    def alpha(self) -> float:
        return DEFAULT_DENSE_ALPHA if self.dense_alpha is None else self.dense_alpha


class SearchResult(BaseModel):
    product_id: str
    title: str
    score: float
    price: float | None
    department: str | None
    category: str | None
    brand: str | None
    in_stock: bool
    lexical_rank: int | None = None
    dense_rank: int | None = None
    reasons: list[Reason]


class SearchResponse(BaseModel):
    query: str
    system: str
    results: list[SearchResult]
    corrections: dict[str, list[str]] = {}
    warnings: list[str] = []

    @property
    def ids(self) -> list[str]:
        return [r.product_id for r in self.results]


class ProductSearch:
    """Holds the loaded indexes; one instance serves many threads."""

    def __init__(
        self,
        catalog: Catalog,
        lexical: LexicalIndex,
        dense: DenseIndex,
        embedder: Embedder,
        vectors: np.ndarray,
        text_row: np.ndarray,
        config: FusionConfig | None = None,
    ) -> None:
        self.catalog = catalog
        self.lexical = lexical
        self.dense = dense
        self.embedder = embedder
        self.vectors = vectors  # (distinct texts, dim): the local mirror of Chroma's vectors
        self.text_row = text_row  # catalogue row -> row of self.vectors
        self.config = config or FusionConfig()
        # exact query text -> its embedding: the search, the no-match rule (match.py) and the scope check of one
        # turn embed the same words once; size 0 embeds every time (bench/search_speed.py measures that)
        self.query_vectors: Recent[str, np.ndarray] = Recent(QUERY_VECTORS)

    @classmethod
    def open(cls, settings, embedder: Embedder | None = None) -> ProductSearch:
        """The index of ``settings``; queries are embedded by the model the index was built with (its manifest
        names it) unless KEFU_EMBED_MODEL or ``embedder`` says otherwise, which must then be the same model."""
        location = IndexLocation.from_settings(settings)
        if embedder is None:
            embedder = Embedder(settings.embed_model or index_model(location))
        return cls.open_location(location, embedder, FusionConfig.from_settings(settings))

    @classmethod
    def open_location(
        cls, location: IndexLocation, embedder: Embedder, config: FusionConfig | None = None
    ) -> ProductSearch:
        df, manifest = read_state(location)
        built_with = manifest.get("embed_model")
        if built_with and Path(built_with).resolve() != embedder.model_path.resolve():
            raise SearchIndexError(
                f"The index in {location.index_dir} was built with the embedding model {built_with}, but queries "
                f"would be embedded with {embedder.model_path}; set KEFU_EMBED_MODEL to the former or "
                f"{REBUILD_HINT}."
            )
        config = (config or FusionConfig()).resolved(manifest)
        try:
            lexical = LexicalIndex.load(location.lexical_path)
        except Exception as exc:  # noqa: BLE001 - any damage means the same fix
            raise SearchIndexError(
                f"The BM25 index in {location.lexical_path} is unreadable ({exc}); {REBUILD_HINT}."
            ) from exc
        if lexical.n_docs != len(df):
            raise SearchIndexError(f"The BM25 index and the catalogue snapshot disagree; {REBUILD_HINT}.")
        dense = DenseIndex(chroma_client(location.index_dir, location.chroma_url), location.collection)
        if dense.count() != len(df):
            raise SearchIndexError(
                f"Chroma holds {dense.count()} vectors for {len(df)} indexed products; {REBUILD_HINT}."
            )
        mirror = read_mirror(location)
        if not set(df["text_hash"]) <= set(mirror):
            raise SearchIndexError(f"The vector file in {location.index_dir} is missing or incomplete; {REBUILD_HINT}.")
        hashes = list(mirror)
        row_of_hash = {h: i for i, h in enumerate(hashes)}
        text_row = np.array([row_of_hash[h] for h in df["text_hash"]], dtype=np.int64)
        vectors = np.stack([mirror[h] for h in hashes]).astype(np.float32)
        return cls(Catalog(df), lexical, dense, embedder, vectors, text_row, config)

    def encode(self, text: str) -> np.ndarray:
        """The query's embedding (read-only), from ``query_vectors`` when this exact text was embedded lately."""
        return self.query_vectors.get(text, self._embed)

    def _embed(self, text: str) -> np.ndarray:
        vector = self.embedder.encode_query(text)
        vector.setflags(write=False)  # shared by every caller of encode(text)
        return vector

    def search(
        self,
        query: str,
        filters: Filters | Mapping[str, Any] | None = None,
        k: int = 10,
        customer: ShopperProfile | None = None,
        system: System = "hybrid",
    ) -> SearchResponse:
        filters = Filters.parse(filters)
        if not 1 <= k <= MAX_K:
            raise SearchQueryError(f"k must be between 1 and {MAX_K}, got {k}.")
        warnings: list[str] = []
        query = query or ""
        if len(query) > self.config.max_query_chars:
            note = f"Query of {len(query):,} characters truncated to the first {self.config.max_query_chars:,}."
            log.warning(note)
            warnings.append(note)
            query = query[: self.config.max_query_chars]
        mask = filters.mask(self.catalog)
        if not query.strip():
            if filters.is_empty():
                raise SearchQueryError(
                    "Empty query: say what you are looking for, or give at least one filter "
                    "(e.g. --department, --max-price) to browse."
                )
            return self._browse(query, mask, k, customer, warnings)

        terms, lexical_hits, dense_hits, scores = self._retrieve(
            query, None if filters.is_empty() else mask, k, system, warnings
        )
        lexical_rank = {row: r for r, (row, _) in enumerate(lexical_hits, 1)}
        dense_rank = {row: r for r, (row, _) in enumerate(dense_hits, 1)}
        scores = {row: s for row, s in scores.items() if mask[row]}  # the hard filters, re-checked
        if terms.unknown:
            warnings.append(f"No catalogue word resembles: {', '.join(terms.unknown)}.")
        ranked = self._rank(scores, k, customer)
        results = [
            self.make_result(row, score, boost_reasons, lexical_rank.get(row), dense_rank.get(row), terms)
            for row, score, boost_reasons in ranked
        ]
        return SearchResponse(
            query=query, system=system, results=results, corrections=terms.corrections, warnings=warnings
        )

    def _retrieve(self, query: str, mask: np.ndarray | None, k: int, system: System, warnings: list[str]):
        """(terms, lexical hits, dense hits, row -> score of ``system``) for a non-empty query."""
        pool = max(k, self.config.candidates)
        terms, lexical_scores, lexical_hits, dense_hits = QueryTerms(tokens=[]), None, [], []
        if system in ("hybrid", "bm25"):
            terms = self.lexical.query_terms(query)
            lexical_scores = self.lexical.scores(terms, mask)
            lexical_hits = self.lexical.top(lexical_scores, pool)
        if system == "bm25":
            return terms, lexical_hits, dense_hits, dict(lexical_hits)
        vector = self.encode(query)
        dense_hits = self.dense_candidates(vector, pool, mask, warnings)
        if system == "dense":
            return terms, lexical_hits, dense_hits, dict(dense_hits)
        c = self.config
        if c.fusion == "rrf":
            ranks = [{row: r for r, (row, _) in enumerate(hits, 1)} for hits in (lexical_hits, dense_hits)]
            return terms, lexical_hits, dense_hits, rrf(*ranks, c.lexical_weight, c.dense_weight, c.rrf_k)
        rows, lexical, dense = self._fusion_inputs(lexical_hits, dense_hits, lexical_scores, vector)
        if c.fusion == "learned":
            coverage, phrase = self.word_matches(terms, rows)
            fused = learned(features(lexical, dense, coverage, phrase), c.weights or {})
        else:
            fused = convex(lexical, dense, c.alpha)
        return terms, lexical_hits, dense_hits, dict(zip(rows.tolist(), fused.tolist(), strict=True))

    def _fusion_inputs(self, lexical_hits, dense_hits, lexical_scores: np.ndarray | None, vector: np.ndarray):
        rows = np.array(sorted({r for r, _ in lexical_hits} | {r for r, _ in dense_hits}), dtype=np.int64)
        lexical = lexical_scores[rows] if lexical_scores is not None else np.zeros(len(rows), dtype=np.float32)
        return rows, lexical, self.cosines(vector, rows)

    def word_matches(self, terms: QueryTerms, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coverage, phrase) of the products at ``rows`` for the query (``lexical.word_matches``)."""
        alternatives = terms.alternatives()
        pairs = [word_matches(alternatives, self.catalog.record(row)["text"]) for row in rows.tolist()]
        if not pairs:
            return np.zeros(0), np.zeros(0)
        coverage, phrase = zip(*pairs, strict=True)
        return np.array(coverage), np.array(phrase)

    def fusion_inputs(self, query: str, filters: Filters | Mapping[str, Any] | None = None):
        """(candidate rows, their BM25 scores, cosines, coverage, phrase) as fusion sees them; for fitting it."""
        filters = Filters.parse(filters)
        mask = None if filters.is_empty() else filters.mask(self.catalog)
        pool = self.config.candidates
        terms = self.lexical.query_terms(query)
        lexical_scores = self.lexical.scores(terms, mask)
        vector = self.encode(query)
        lexical_hits = self.lexical.top(lexical_scores, pool)
        rows, lexical, dense = self._fusion_inputs(
            lexical_hits, self.dense_candidates(vector, pool, mask), lexical_scores, vector
        )
        return (rows, lexical, dense, *self.word_matches(terms, rows))

    def cosines(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact cosine of the query with the products at ``rows`` (from the local vector mirror)."""
        with BLAS.limit(limits=1, user_api="blas"):
            return self.vectors[self.text_row[rows]] @ vector

    def dense_candidates(
        self, vector: np.ndarray, n: int, mask: np.ndarray | None, warnings: list[str] | None = None
    ) -> list[tuple[int, float]]:
        """Top-n (row, cosine) by meaning, from Chroma's HNSW index. With a filter (every shopper's search
        carries one: in stock), Chroma is asked for ``n * hnsw_overfetch`` neighbours without a where clause
        (its metadata-filtered query took 200-700 ms at 100k products here) and the filter is applied to them.
        An exact scan of the allowed products' vectors answers instead when the filter is narrow (``use_hnsw``)
        or when the over-fetch holds fewer than n allowed neighbours."""
        if mask is None:
            hits = self._hnsw(vector, n, warnings)
            if hits is None:
                return self.exact_candidates(vector, n, np.ones(len(self.catalog), dtype=bool))
            return [(self.catalog.row_of[pid], s) for pid, s in hits if pid in self.catalog.row_of]
        allowed = int(np.count_nonzero(mask))
        if allowed == 0:
            return []
        if self.use_hnsw(allowed):
            want = min(n * self.config.hnsw_overfetch, len(self.catalog))
            row_of = self.catalog.row_of
            got = self._hnsw(vector, want, warnings)
            hits = [(row_of[pid], s) for pid, s in got or [] if pid in row_of]
            kept = [(row, s) for row, s in hits if mask[row]]
            if got is not None and len(kept) >= min(n, allowed):
                return kept[:n]
        return self.exact_candidates(vector, n, mask)

    def _hnsw(self, vector: np.ndarray, n: int, warnings: list[str] | None) -> list[tuple[str, float]] | None:
        """Chroma's nearest neighbours, or None when Chroma cannot answer (a server down or restarting): then
        the exact scan of the local vector mirror answers and ``warnings`` says so."""
        try:
            return self.dense.search(vector, n, None)
        except Exception as exc:  # noqa: BLE001 - any Chroma failure: the local mirror answers the same question
            log.warning("Chroma did not answer (%s); dense candidates from the local vector copy", exc)
            if warnings is not None:
                warnings.append(CHROMA_DOWN)
            return None

    def use_hnsw(self, allowed: int) -> bool:
        """Whether a filter allowing ``allowed`` products is served by the HNSW over-fetch: the exact scan would
        score at least ``exact_below`` vectors (measured at 100k products: a scan of ~21k vectors costs about
        what an HNSW query for 400 neighbours does, 2-3 ms), and enough products are allowed that n * factor
        neighbours are expected to hold twice n allowed ones (share * factor >= 2)."""
        c = self.config
        scanned = allowed if 3 * allowed < len(self.vectors) else len(self.vectors)  # as exact_candidates does
        return scanned >= c.exact_below and allowed * c.hnsw_overfetch >= 2 * len(self.catalog)

    def exact_candidates(self, vector: np.ndarray, n: int, mask: np.ndarray) -> list[tuple[int, float]]:
        """Top-n (row, cosine) among the allowed products, exactly (one dot product per distinct text)."""
        rows = np.flatnonzero(mask)
        if len(rows) == 0:
            return []
        with BLAS.limit(limits=1, user_api="blas"):  # one query: spinning BLAS threads only contend
            if 3 * len(rows) < len(self.vectors):  # a narrow filter: gather the few rows rather than score all
                sims = self.vectors[self.text_row[rows]] @ vector
            else:
                sims = (self.vectors @ vector)[self.text_row[rows]]
        pick = np.argpartition(-sims, n - 1)[:n] if len(rows) > n else np.arange(len(rows))
        pairs = zip(rows[pick].tolist(), sims[pick].tolist(), strict=True)
        return sorted(pairs, key=lambda t: (-t[1], self.catalog.ids[t[0]]))

    def _rank(self, scores: dict[int, float], k: int, customer: ShopperProfile | None):
        order = sorted(scores, key=lambda row: (-scores[row], self.catalog.ids[row]))
        if customer is None:
            return [(row, scores[row], []) for row in order[:k]]
        rescored = []
        for row in order[: max(k, self.config.candidates)]:
            boost, reasons = personal_boost(self.catalog.record(row), customer)
            rescored.append((row, scores[row] * (1.0 + boost), reasons))
        rescored.sort(key=lambda t: (-t[1], self.catalog.ids[t[0]]))
        return rescored[:k]

    def _browse(
        self, query: str, mask: np.ndarray, k: int, customer: ShopperProfile | None, warnings: list[str]
    ) -> SearchResponse:
        rows = np.flatnonzero(mask)
        pop = self.catalog.popularity[rows]
        top = rows[np.lexsort((self.catalog.ids[rows].astype(str), -pop))][: max(k, self.config.candidates)]
        scores = {int(row): float(np.log1p(self.catalog.popularity[row]) + 1.0) for row in top}
        ranked = self._rank(scores, k, customer)
        results = [self.make_result(row, score, reasons, None, None, None) for row, score, reasons in ranked]
        warnings.append("Empty query: showing the filtered catalogue, most bought first.")
        return SearchResponse(query=query, system="browse", results=results, warnings=warnings)

    def make_result(
        self,
        row: int,
        score: float,
        personal: list[Reason],
        lexical_rank: int | None,
        dense_rank: int | None,
        terms: QueryTerms | None,
    ) -> SearchResult:
        rec = self.catalog.record(row)
        reasons = []
        if lexical_rank is not None and terms is not None:
            words = sorted(set(terms.tokens) & set(tokenize(rec["text"])))
            fixed = [f"'{w}' as '{c}'" for w, cs in terms.corrections.items() for c in cs if c in words]
            text = f"matches {', '.join(words)}" + (f"; read {', '.join(fixed)}" if fixed else "")
            reasons.append(Reason(kind="keyword", text=text, rank=lexical_rank))
        if dense_rank is not None:
            reasons.append(Reason(kind="semantic", text="similar in meaning", rank=dense_rank))
        if terms is None:
            times = int(self.catalog.popularity[row])
            reasons.append(Reason(kind="popular", text=f"bought {times} times in the shop's orders", score=times))
        reasons.extend(personal)
        price = rec["price"]
        return SearchResult(
            product_id=rec["product_id"],
            title=rec["title"],
            score=round(float(score), 6),
            price=None if price is None or np.isnan(price) else float(price),
            department=rec["department"],
            category=rec["category"],
            brand=rec["brand"],
            in_stock=bool(rec["in_stock"]),
            lexical_rank=lexical_rank,
            dense_rank=dense_rank,
            reasons=reasons,
        )
