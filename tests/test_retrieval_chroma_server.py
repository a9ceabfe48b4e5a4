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


@pytest.fixture
def chroma_server(tmp_path):
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chroma run did not start: {(tmp_path / 'chroma.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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
