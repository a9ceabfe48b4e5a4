"""Build and update the product indexes: Chroma vectors, the BM25 index, and the catalogue snapshot beside them.

Layout under ``index_dir``: ``chroma/`` (embedded Chroma; unused in server mode), ``lexical/`` (bm25s),
``catalog.parquet`` (the indexed rows with their text hashes and filter metadata), ``vectors.npy`` +
``vector_hashes.json`` (one vector per distinct text: the mirror that filtered dense search scores exactly, and
the cache that spares re-embedding a text seen before), ``manifest.json``.

Re-indexing is incremental: products whose text hash changed (or are new) are embedded, each distinct text
once; products whose only change is metadata (price, stock, department …) get a metadata update; products gone
from the catalogue are deleted from Chroma. BM25 is rebuilt whole (seconds). The snapshot is written last, so an
interrupted run is redone on the next one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha1
from pathlib import Path

import numpy as np
import pandas as pd

from kefu.embedder import Embedder
from kefu.errors import SearchIndexError
from kefu.store import connect
from retrieval.catalog import catalog_from_store, chroma_metadata
from retrieval.dense import DenseIndex, chroma_client
from retrieval.lexical import LexicalIndex

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
REBUILD_HINT = "rebuild it with `kefu index --rebuild`"


@dataclass(frozen=True)
class IndexLocation:
    index_dir: Path
    collection: str
    chroma_url: str | None = None

    @classmethod
    def from_settings(cls, settings) -> IndexLocation:
        """One Chroma collection per store (its name derives from the store's path)."""
        digest = sha1(str(settings.store_path.resolve()).encode()).hexdigest()[:12]
        return cls(settings.index_dir, f"kefu-products-{digest}", settings.chroma_url)

    @property
    def catalog_path(self) -> Path:
        return self.index_dir / "catalog.parquet"

    @property
    def lexical_path(self) -> Path:
        return self.index_dir / "lexical"

    @property
    def manifest_path(self) -> Path:
        return self.index_dir / "manifest.json"

    @property
    def vectors_path(self) -> Path:
        return self.index_dir / "vectors.npy"

    @property
    def vector_hashes_path(self) -> Path:
        return self.index_dir / "vector_hashes.json"


def read_mirror(location: IndexLocation) -> dict[str, np.ndarray]:
    """The local copy of every distinct text's vector, by text hash (empty when absent or unreadable)."""
    try:
        hashes = json.loads(location.vector_hashes_path.read_text())
        vectors = np.load(location.vectors_path)
    except (OSError, ValueError):
        return {}
    return dict(zip(hashes, vectors, strict=True)) if len(hashes) == len(vectors) else {}


def write_mirror(location: IndexLocation, vectors: dict[str, np.ndarray]) -> None:
    matrix = np.stack(list(vectors.values())) if vectors else np.zeros((0, 0), dtype=np.float32)
    with open(location.vectors_path.with_suffix(".npy.tmp"), "wb") as f:
        np.save(f, matrix.astype(np.float32))
    os.replace(location.vectors_path.with_suffix(".npy.tmp"), location.vectors_path)
    location.vector_hashes_path.write_text(json.dumps(list(vectors)))


TUNE_FILE = "kefu_tune.json"  # written by `kefu index tune` into a tuned model's folder


def model_dense_alpha(model_path: Path) -> float | None:
    """The fusion weight fitted with a tuned embedding model (its folder's TUNE_FILE), if any."""
    try:
        alpha = json.loads((Path(model_path) / TUNE_FILE).read_text()).get("dense_alpha")
    except (OSError, ValueError, AttributeError):
        return None
    return None if alpha is None else float(alpha)


def model_fusion_weights(model_path: Path) -> dict[str, float] | None:
    """The learned-fusion weights fitted with a tuned embedding model (its folder's TUNE_FILE), if any."""
    try:
        weights = json.loads((Path(model_path) / TUNE_FILE).read_text()).get("fusion_weights")
    except (OSError, ValueError, AttributeError):
        return None
    return {str(k): float(v) for k, v in weights.items()} if isinstance(weights, dict) and weights else None


def index_model(location: IndexLocation) -> Path | None:
    """The embedding model an index was built with, when its manifest names one that still exists."""
    try:
        path = json.loads(location.manifest_path.read_text()).get("embed_model")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(path) if path and Path(path).is_dir() else None


def read_state(location: IndexLocation) -> tuple[pd.DataFrame, dict]:
    """The indexed catalogue and manifest; SearchIndexError saying how to rebuild when missing or unreadable."""
    if not location.manifest_path.is_file():
        raise SearchIndexError(f"No product index in {location.index_dir}; build it with `kefu index`.")
    try:
        manifest = json.loads(location.manifest_path.read_text())
        catalog = pd.read_parquet(location.catalog_path)
    except Exception as exc:  # noqa: BLE001 - any damage means the same fix
        raise SearchIndexError(
            f"The product index in {location.index_dir} is unreadable ({exc}); {REBUILD_HINT}."
        ) from exc
    if manifest.get("version") != FORMAT_VERSION or manifest.get("products") != len(catalog):
        raise SearchIndexError(
            f"The product index in {location.index_dir} is inconsistent or from another version; {REBUILD_HINT}."
        )
    return catalog, manifest


def build_index(
    catalog: pd.DataFrame, location: IndexLocation, embedder: Embedder, *, rebuild: bool = False, progress: bool = False
) -> dict:
    """Bring both indexes in line with ``catalog``; returns counts of what was done."""
    started = time.perf_counter()
    location.index_dir.mkdir(parents=True, exist_ok=True)
    old: pd.DataFrame | None = None
    manifest: dict = {}
    if not rebuild:
        try:
            old, manifest = read_state(location)
            if (
                manifest.get("embed_model") != str(embedder.model_path)
                or manifest.get("collection") != location.collection
            ):
                log.warning("Embedding model or collection changed: rebuilding the whole index.")
                old = None
        except SearchIndexError as exc:
            if location.manifest_path.exists():
                log.warning("Existing index unusable (%s): rebuilding it.", exc)
    client = chroma_client(location.index_dir, location.chroma_url)
    dense = DenseIndex(client, location.collection, create=True)
    if old is not None and dense.count() != len(old):
        log.warning("Chroma holds %d vectors, the snapshot %d products: rebuilding.", dense.count(), len(old))
        old = None
    if old is None:
        dense.drop()
        dense = DenseIndex(client, location.collection, create=True)
        old = pd.DataFrame(columns=catalog.columns)

    records = catalog.to_dict("records")
    metas = [chroma_metadata(r) for r in records]
    old_records = {r["product_id"]: r for r in old.to_dict("records")}
    embed_rows, meta_rows = [], []
    for i, rec in enumerate(records):
        prev = old_records.get(rec["product_id"])
        if prev is None or prev["text_hash"] != rec["text_hash"]:
            embed_rows.append(i)
        elif chroma_metadata(prev) != metas[i]:
            meta_rows.append(i)
    deleted = sorted(set(old_records) - set(catalog["product_id"]))
    tuned = {"dense_alpha": model_dense_alpha(embedder.model_path),
             "fusion_weights": model_fusion_weights(embedder.model_path)}  # fmt: skip
    same_tuning = all(manifest.get(k) == v for k, v in tuned.items())  # a tune may have written its weights since
    if same_tuning and unchanged(old, catalog, location) and not (embed_rows or meta_rows or deleted):
        # A second `kefu index` (`make demo` again): nothing to write, and the embedding model is never loaded.
        return {"products": len(catalog), "embedded": 0, "distinct_texts_embedded": 0, "metadata_updated": 0,
                "deleted": 0, "unchanged": True, "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip

    # Vectors by text hash: reuse the mirror's, embed only texts never seen (each distinct text once).
    mirror = {} if rebuild or not old_records else read_mirror(location)
    text_of = {rec["text_hash"]: rec["text"] for rec in records}
    embedded_now = {records[i]["product_id"] for i in embed_rows}
    from_chroma = {
        rec["text_hash"]: rec["product_id"]
        for rec in records
        if rec["text_hash"] not in mirror and rec["product_id"] not in embedded_now
    }
    mirror.update(zip(from_chroma, dense.vectors(list(from_chroma.values())), strict=True))  # repair, no re-embed
    missing = sorted(set(text_of) - set(mirror))
    fresh = embedder.encode([text_of[h] for h in missing], progress=progress) if missing else []  # no model load
    mirror.update(zip(missing, fresh, strict=True))
    if embed_rows:
        dense.upsert(
            [records[i]["product_id"] for i in embed_rows],
            np.stack([mirror[records[i]["text_hash"]] for i in embed_rows]),
            [metas[i] for i in embed_rows],
        )
    dense.update_metadata([records[i]["product_id"] for i in meta_rows], [metas[i] for i in meta_rows])
    dense.delete(deleted)

    LexicalIndex.build(catalog["text"].tolist()).save(location.lexical_path)
    write_mirror(location, {h: mirror[h] for h in sorted(text_of)})
    tmp = location.catalog_path.with_suffix(".parquet.tmp")
    catalog.to_parquet(tmp, index=False)
    os.replace(tmp, location.catalog_path)
    manifest = {
        "version": FORMAT_VERSION,
        "collection": location.collection,
        "chroma_url": location.chroma_url,
        "embed_model": str(embedder.model_path),
        "dense_alpha": tuned["dense_alpha"],  # None: the default weight for the model
        "fusion_weights": tuned["fusion_weights"],  # None: no learned fusion for this index
        "products": len(catalog),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    location.manifest_path.write_text(json.dumps(manifest, indent=2))
    return {
        "products": len(catalog),
        "embedded": len(embed_rows),
        "distinct_texts_embedded": len(missing),
        "metadata_updated": len(meta_rows),
        "deleted": len(deleted),
        "seconds": round(time.perf_counter() - started, 2),
    }


def unchanged(old: pd.DataFrame, catalog: pd.DataFrame, location: IndexLocation) -> bool:
    """The indexed snapshot is this catalogue, row for row, and every file built from it is there."""
    files = (location.lexical_path, location.vector_hashes_path, location.vectors_path, location.catalog_path)
    if len(old) != len(catalog) or list(old.columns) != list(catalog.columns) or not all(f.exists() for f in files):
        return False
    return old.reset_index(drop=True).astype(str).equals(catalog.reset_index(drop=True).astype(str))


def index_store(settings, *, rebuild: bool = False, progress: bool = False) -> dict:
    """``kefu index``: index the store's products."""
    with connect(settings.store_path) as con:
        catalog = catalog_from_store(con)
    embedder = Embedder(settings.embed_model)
    return build_index(catalog, IndexLocation.from_settings(settings), embedder, rebuild=rebuild, progress=progress)
