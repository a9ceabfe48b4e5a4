"""Shared fixtures: a demo store built once per session, and one real vLLM server with the packaged model.

The vLLM server starts at most once per test session (about 100 s on 2 CPU cores) on its own port with its own
data dir. Set KEFU_TEST_LLM_URL to test against an already running OpenAI-compatible server instead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from kefu.llm import prepare as model_prep
from kefu.llm import server as vllm_server
from kefu.settings import Settings
from kefu.store import demo as store_demo

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    # Tests that stop the shared server run last, so every other real-LLM test still has it.
    items.sort(key=lambda item: item.get_closest_marker("stops_llm") is not None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings with a private data dir and no KEFU_* leaking in from the environment."""
    for key in list(os.environ):
        if key.startswith("KEFU_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def postgres_server():
    """One throw-away PostgreSQL cluster for the session (tests/postgres_server.py), removed at the end."""
    from tests.postgres_server import PostgresServer, require_driver

    require_driver()
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.remove()


@pytest.fixture(params=["sqlite", "postgres"])
def records_location(request, tmp_path) -> Path | str:
    """Where a test's records live, once per backend: a SQLite file, or a fresh database on the session's
    PostgreSQL cluster (the driver missing fails the test with what to run)."""
    if request.param == "sqlite":
        return tmp_path / "records.sqlite"
    from tests.postgres_server import require_driver

    require_driver()
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    """The demo store built from data/completejourney (read-only for tests: copy it before writing)."""
    path = tmp_path_factory.mktemp("store") / "store.duckdb"
    store_demo.build(store_demo.default_source(), path)
    return path


@pytest.fixture(scope="session")
def llm_settings(tmp_path_factory) -> Settings:
    """Settings pointing at the session's real vLLM server (started here unless KEFU_TEST_LLM_URL is set)."""
    external = os.environ.get("KEFU_TEST_LLM_URL")
    if external:
        yield Settings(
            data_dir=tmp_path_factory.mktemp("llm"),
            llm_url=external,
            llm_served_name=os.environ.get("KEFU_TEST_LLM_NAME", "smollm2-135m-instruct"),
        )
        return
    model_dir, _ = model_prep.prepare(REPO / ".kefu" / "models" / "smollm2-135m-instruct")
    settings = Settings(data_dir=tmp_path_factory.mktemp("llm"), llm_model=str(model_dir), llm_port=free_port())
    vllm_server.start(settings)
    yield settings
    vllm_server.stop(settings)


@pytest.fixture(scope="session")
def intent_classifier():
    """The real fast intent classifier, trained once into the repository's .kefu (as `make intents` does: a few
    minutes on 2 cores, skipped while the data and the intent map are unchanged)."""
    from assistant.understanding.intents import IntentClassifier, ensure_trained

    settings = Settings(data_dir=REPO / ".kefu")
    ensure_trained(settings)
    return IntentClassifier.load(settings)


SHOP_SUBSET = """
DELETE FROM products WHERE NOT (price IS NOT NULL AND (hash(product_id) % 6 = 0
    OR category IN ('DRY NOODLES/PASTA', 'CRACKERS/MISC BKD FD', 'FLUID MILK PRODUCTS', 'CHEESE', 'COOKIES/CONES')))
"""


@pytest.fixture(scope="session")
def shop_settings(demo_store, tmp_path_factory) -> Settings:
    """A demo store cut to a few thousand priced products, indexed for real (embedder, Chroma, BM25)."""
    import shutil

    import duckdb

    from retrieval.indexer import index_store

    settings = Settings(data_dir=tmp_path_factory.mktemp("shop"), chroma_url=None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_store, settings.store_path)
    con = duckdb.connect(str(settings.store_path))
    con.execute(SHOP_SUBSET)
    con.execute("CHECKPOINT")
    con.close()
    index_store(settings)
    return settings


def real_services(settings: Settings, records_path: Path, profiles=None, recommender=None):
    """The assistant's real services over ``settings``' store and index, with a records database of its own
    (and the fitted recommender, when given; without it recommendations use the category search)."""
    from assistant.services import Services
    from assistant.shop import StoreCatalogue, StoreOrders
    from kefu.records.cases import CaseBook
    from kefu.records.db import Records
    from retrieval.hybrid import ProductSearch

    catalogue = StoreCatalogue(ProductSearch.open(settings), settings.store_path, recommender=recommender)
    if hasattr(profiles, "on_record"):  # a real ProfileStore, wired as assistant/factory.py does (fakes have none)
        profiles.on_record(catalogue.forget)
    return Services(
        catalogue=catalogue,
        orders=StoreOrders(settings.store_path, catalogue.reader),
        cases=CaseBook(Records(records_path)),
        profiles=profiles,
    )


def conversation_log(path: Path):
    from kefu.records.conversations import ConversationLog
    from kefu.records.db import Records

    return ConversationLog(Records(path))


@pytest.fixture
def live(shop_settings, llm_settings, tmp_path, monkeypatch):
    """`kefu` pointed at the test shop and the session's real vLLM, with a records database of its own."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("store.duckdb", "index"):
        (data / name).symlink_to(shop_settings.data_dir / name)
    monkeypatch.setenv("KEFU_DATA_DIR", str(data))
    monkeypatch.setenv("KEFU_LLM_URL", llm_settings.llm_base_url)
    monkeypatch.setenv("KEFU_LLM_SERVED_NAME", llm_settings.llm_served_name)
    return data
