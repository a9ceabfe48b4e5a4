"""Server mode: the same indexing and search against a real `chroma run` server started here."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from kefu.embedder import Embedder
from kefu.errors import SearchIndexError
from kefu.settings import Settings
from retrieval.hybrid import ProductSearch
from retrieval.indexer import index_store
from tests.conftest import free_port


class ChromaProcess:
    """A real `chroma run` server on a free port over ``path``; stop() and start() again on the same data."""

    def __init__(self, path: Path, log_path: Path) -> None:
        self.path, self.log_path, self.port = path, log_path, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        chroma = Path(sys.executable).parent / "chroma"
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chroma run did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def chroma_process(tmp_path):
    server = ChromaProcess(tmp_path / "chroma-server", tmp_path / "chroma.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chroma_server(chroma_process):
    return chroma_process.url


def test_index_and_search_through_a_chroma_server(demo_store, tmp_path, chroma_server):
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server)
    settings.store_path.parent.mkdir(parents=True)
    shutil.copy(demo_store, settings.store_path)
    con = duckdb.connect(str(settings.store_path))
    con.execute("DELETE FROM products WHERE hash(product_id) % 500 <> 0 AND category <> 'CAT FOOD'")
    con.execute("DELETE FROM products WHERE category = 'CAT FOOD' AND hash(product_id) % 10 <> 0")
    con.execute("CHECKPOINT")
    con.close()
    report = index_store(settings)
    assert report["embedded"] == report["products"] > 100
    assert not (settings.index_dir / "chroma").exists()  # vectors live on the server
    search = ProductSearch.open(settings, Embedder())
    assert search.dense.count() == report["products"]
    response = search.search("cat food", {"max_price": 5}, k=3)
    assert response.results and all("CAT" in r.title and r.price <= 5 for r in response.results)
    assert index_store(settings)["embedded"] == 0  # incremental against the server too


def test_unreachable_chroma_server_is_a_clear_error(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", chroma_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SearchIndexError, match=r"Cannot reach the Chroma server(.|\n)*`chroma run"):
        from retrieval.dense import chroma_client

        chroma_client(settings.index_dir, settings.chroma_url)


def small_shop(demo_store, tmp_path, chroma_url) -> Settings:
    # search_exact_below=0: the small shop's searches go to Chroma's HNSW index, as a big shop's do
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_url, search_exact_below=0)
    settings.store_path.parent.mkdir(parents=True)
    shutil.copy(demo_store, settings.store_path)
    con = duckdb.connect(str(settings.store_path))
    con.execute("DELETE FROM products WHERE hash(product_id) % 500 <> 0 AND category <> 'CAT FOOD'")
    con.execute("DELETE FROM products WHERE price IS NULL OR NOT in_stock")  # all sellable: HNSW serves them
    con.execute("CHECKPOINT")
    con.close()
    index_store(settings)
    return settings


def test_a_stopped_chroma_server_still_answers_with_a_note_in_the_turns_events(demo_store, tmp_path, chroma_process):
    from assistant.events import ToolCalled
    from assistant.loop import Assistant
    from assistant.session import Session
    from retrieval.hybrid import CHROMA_DOWN
    from tests.conftest import real_services
    from tests.fake_llm import ScriptedLLM, reading

    settings = small_shop(demo_store, tmp_path, chroma_process.url)
    services = real_services(settings, tmp_path / "records.sqlite")
    up = services.catalogue.index.search("cat food", {"in_stock": True}, k=3)
    chroma_process.stop()
    down = services.catalogue.index.search("cat food", {"in_stock": True}, k=3)
    assert not up.warnings and CHROMA_DOWN in down.warnings
    assert down.ids == up.ids  # the local vector copy answers the same

    assistant = Assistant(services, ScriptedLLM([reading(product="cat food")]))
    events = list(assistant.turn(Session(customer_id=None), "cat food"))
    (search,) = [e for e in events if isinstance(e, ToolCalled)]
    assert search.ok and search.products and CHROMA_DOWN in search.data["note"]
    assert events[-1].products


def test_a_chroma_restart_keeps_a_50000_vector_index(tmp_path, chroma_process):
    import numpy as np

    from retrieval.dense import DenseIndex, chroma_client

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((50_000, 384)).astype(np.float32)  # random unit vectors: a size test only
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"p{i}" for i in range(len(vectors))]
    index = DenseIndex(chroma_client(tmp_path, chroma_process.url), "restart", create=True)
    index.upsert(ids, vectors, [{"in_stock": True}] * len(ids))
    assert index.count() == 50_000
    before = index.search(vectors[123], 10, None)
    chroma_process.stop()
    chroma_process.start()
    again = DenseIndex(chroma_client(tmp_path, chroma_process.url), "restart")
    assert again.count() == 50_000
    after = again.search(vectors[123], 10, None)
    assert after[0][0] == "p123" and [pid for pid, _ in after] == [pid for pid, _ in before]
