"""Dense side: product vectors in Chroma, one collection per store, cosine space.

Embedded (``PersistentClient`` under ``index_dir/chroma``) by default; a ``chroma run`` server when a URL is
given. Vectors always come from our embedder: collections are created without an embedding function.
Metadata on each vector (see ``catalog.chroma_metadata``) lets Chroma apply hard filters during the search.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from kefu.errors import SearchIndexError

REBUILD = "rebuild the index with `kefu index --rebuild`"


def chroma_client(index_dir: Path, chroma_url: str | None):
    import chromadb  # deferred: heavy (~0.4-0.9 s), only needed when the index is opened
    from chromadb.config import Settings as ChromaSettings  # deferred: as above

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        try:
            client = chromadb.HttpClient(
                host=url.hostname or "localhost",
                port=url.port or 8000,
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:
            raise SearchIndexError(
                f"Cannot reach the Chroma server at {chroma_url} ({exc}). Start it with "
                "`chroma run --path DIR --port PORT`, or unset KEFU_CHROMA_URL to use the "
                "embedded store."
            ) from exc
        return client
    path = index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class DenseIndex:
    def __init__(self, client, name: str, *, create: bool = False) -> None:
        self.client = client
        self.name = name
        if create:
            self.collection = client.get_or_create_collection(
                name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
            )
        else:
            try:
                self.collection = client.get_collection(name, embedding_function=None)
            except Exception as exc:
                raise SearchIndexError(
                    f"The Chroma collection {name!r} is missing ({exc}); rebuild the index with `kefu index --rebuild`."
                ) from exc
        self.batch = max(1, min(5000, int(client.get_max_batch_size())))

    def drop(self) -> None:
        try:
            self.client.delete_collection(self.name)
        except Exception:  # noqa: BLE001 - absent collection: nothing to drop
            return

    def count(self) -> int:
        return int(self.collection.count())

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(ids), self.batch):
            end = start + self.batch
            self.collection.upsert(
                ids=list(ids[start:end]), embeddings=vectors[start:end], metadatas=list(metadatas[start:end])
            )

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(ids), self.batch):
            end = start + self.batch
            self.collection.update(ids=list(ids[start:end]), metadatas=list(metadatas[start:end]))

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), self.batch):
            self.collection.delete(ids=list(ids[start : start + self.batch]))

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors of ``ids``, in that order (all must exist)."""
        out = []
        for start in range(0, len(ids), self.batch):
            chunk = list(ids[start : start + self.batch])
            got = self.collection.get(ids=chunk, include=["embeddings"])
            by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
            if len(by_id) != len(chunk):
                raise SearchIndexError(f"Chroma lacks vectors for some indexed products; {REBUILD}.")
            out.extend(np.asarray(by_id[i], dtype=np.float32) for i in chunk)
        return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)

    def vector(self, product_id: str) -> np.ndarray | None:
        got = self.collection.get(ids=[product_id], include=["embeddings"])
        if not got["ids"]:
            return None
        return np.asarray(got["embeddings"][0], dtype=np.float32)

    def search(self, vector: np.ndarray, n: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        """Top-n (product_id, cosine similarity) among vectors matching ``where``."""
        if n <= 0:
            return []
        got = self.collection.query(
            query_embeddings=vector.reshape(1, -1), n_results=n, where=where, include=["distances"]
        )
        return [(pid, 1.0 - float(d)) for pid, d in zip(got["ids"][0], got["distances"][0], strict=True)]
