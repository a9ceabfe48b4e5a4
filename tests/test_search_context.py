"""One search context per turn (issue 18, item 5): a query is embedded once and its vector shared with the no-match
rule and the scope check; the store is read through one connection with a cursor per thread; a shopper's rank
profile is read once and dropped by a live profile event. With the real store, index and embedder."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pytest
from fastapi.testclient import TestClient

import assistant.shop
from assistant.loop import Assistant
from assistant.shop import StoreOrders
from kefu.cache import Recent
from kefu.errors import StoreError
from kefu.store import StoreReader
from tests.conftest import real_services
from tests.fake_llm import ScriptedLLM
from ui.api import create_app

CUSTOMER = "1111"


class CountingEmbedder:
    """The real embedder, with the query texts it was asked to embed."""

    def __init__(self, inner) -> None:
        self.inner, self.queries = inner, []
        self._lock = threading.Lock()

    def encode_query(self, text: str):
        with self._lock:
            self.queries.append(text)
        return self.inner.encode_query(text)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def services(shop_settings, tmp_path_factory):
    return real_services(shop_settings, tmp_path_factory.mktemp("ctx") / "records.sqlite")


@pytest.fixture
def catalogue(services):
    """The real catalogue with empty caches and an embedder that counts."""
    catalogue = services.catalogue
    inner = catalogue.index.embedder
    catalogue.index.embedder = CountingEmbedder(inner)
    catalogue.index.query_vectors.clear()
    catalogue.profiles.clear()
    yield catalogue
    catalogue.index.embedder = inner


def test_one_search_embeds_its_query_once(catalogue):
    # a budget nothing meets: the no-match rule checks the results, then searches again without the budget
    found = catalogue.search("cheddar cheese", {"max_price": 0.05}, 5, CUSTOMER)
    assert found.no_match == "outside_limits"
    assert catalogue.index.embedder.queries == ["cheddar cheese"]
    assert catalogue.carries("cheddar cheese")  # the scope check of the same turn: the same words, no new embedding
    assert catalogue.index.embedder.queries == ["cheddar cheese"]
    catalogue.search("a laptop", {}, 5, None)
    assert catalogue.index.embedder.queries == ["cheddar cheese", "a laptop"]


def test_without_the_vector_cache_the_same_search_embeds_four_times(catalogue):
    catalogue.index.query_vectors = Recent(0)  # as before: each side of the search and each match check embedded
    try:
        catalogue.search("cheddar cheese", {"max_price": 0.05}, 5, CUSTOMER)
    finally:
        catalogue.index.query_vectors = Recent(256)
    assert catalogue.index.embedder.queries == ["cheddar cheese"] * 4


def test_cached_query_vectors_are_read_only(catalogue):
    vector = catalogue.index.encode("penne pasta")
    with pytest.raises(ValueError):
        vector *= 2
    assert catalogue.index.encode("penne pasta") is vector


def test_searches_reuse_one_store_connection_with_a_cursor_per_thread(catalogue, shop_settings, monkeypatch):
    reader = StoreReader(shop_settings.store_path)
    monkeypatch.setattr(catalogue, "reader", reader)
    orders = StoreOrders(shop_settings.store_path, reader)
    real_connect, connects = duckdb.connect, []
    monkeypatch.setattr(duckdb, "connect", lambda *a, **kw: connects.append(a) or real_connect(*a, **kw))

    def shop(query: str) -> None:
        for _ in range(3):
            catalogue.search(query, {"max_price": 5}, 5, CUSTOMER)
            catalogue.details(["28897"])
            catalogue.taste(CUSTOMER)
            orders.recent(CUSTOMER, 3)

    shop("crackers")
    assert (len(connects), reader.opened) == (1, 2)  # one connection, one cursor for this thread
    threads = [threading.Thread(target=shop, args=(q,)) for q in ("milk", "cookies", "spaghetti", "cheese")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(connects), reader.opened) == (1, 2 + len(threads))  # a cursor per new thread, nothing per call
    reader.close()


def test_a_reader_without_a_store_says_how_to_build_one(tmp_path):
    with pytest.raises(StoreError, match="kefu store build"):
        StoreReader(tmp_path / "none.duckdb").cursor()


def test_threads_searching_at_once_find_what_one_thread_finds(catalogue):
    asks = [
        ("cheddar cheese", {}, CUSTOMER),
        ("crackers", {"max_price": 3}, CUSTOMER),
        ("milk", {}, None),
        ("a laptop", {}, None),
        ("cookies", {"max_price": 0.05}, "1112"),
        ("spaghetti", {}, CUSTOMER),
    ] * 2

    def ask(a):
        found = catalogue.search(a[0], a[1], 5, a[2])
        return [c.product_id for c in found.products], found.no_match, found.note

    serial = [ask(a) for a in asks]
    catalogue.index.query_vectors.clear()
    catalogue.profiles.clear()
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(ask, asks))
    assert parallel == serial
    assert any(ids for ids, _, _ in serial) and any(no for _, no, _ in serial)


def test_a_shoppers_profile_is_read_once_and_again_after_a_live_event(
    shop_settings, demo_store, tmp_path_factory, tmp_path, monkeypatch
):
    from segmentation.profiles import ProfileStore
    from tests.segmentation_fit import copy_of_fit

    fitted = copy_of_fit(demo_store, tmp_path_factory.mktemp("fit"), tmp_path)
    services = real_services(shop_settings, tmp_path / "records.sqlite", ProfileStore.load(fitted))
    reads = []
    real_read = assistant.shop.profile_from_store
    monkeypatch.setattr(assistant.shop, "profile_from_store", lambda con, cid: reads.append(cid) or real_read(con, cid))
    catalogue = services.catalogue
    first = catalogue.taste(CUSTOMER)
    catalogue.search("cheddar cheese", {}, 5, CUSTOMER)
    catalogue.recommend(CUSTOMER, 5, None)
    catalogue.search("milk", {}, 5, "1112")
    assert reads == [CUSTOMER, "1112"]  # once per shopper, not once per call

    settings = shop_settings.model_copy(update={"events_key": "events-key-123", "auth_secret": "s" * 32})
    client = TestClient(create_app(Assistant(services, ScriptedLLM()), settings))
    event = {"customer_id": CUSTOMER, "ts": "2018-01-03T12:00:00", "type": "view"}
    r = client.post("/v1/events", json=event, headers={"Authorization": "Bearer events-key-123"})
    assert r.status_code == 200, r.text
    assert catalogue.taste(CUSTOMER) == first and reads == [CUSTOMER, "1112", CUSTOMER]  # read afresh
    catalogue.search("milk", {}, 5, "1112")
    assert reads == [CUSTOMER, "1112", CUSTOMER]  # other shoppers' profiles stay cached


def test_recent_keeps_the_latest_and_expires_them():
    now = [0.0]
    cache: Recent[str, int] = Recent(2, ttl=10, clock=lambda: now[0])
    made = []

    def make(key: str) -> int:
        made.append(key)
        return len(key)

    assert [cache.get(k, make) for k in ("a", "bb", "a", "ccc")] == [1, 2, 1, 3]
    assert made == ["a", "bb", "ccc"] and len(cache) == 2  # "bb" was the least recently used
    cache.get("bb", make)
    assert made[-1] == "bb"
    now[0] = 11.0
    cache.get("bb", make)
    assert made.count("bb") == 3 and cache.made == 5  # expired, made again


def test_a_value_made_across_a_forget_is_not_kept():
    cache: Recent[str, str] = Recent(8)

    def make_and_forget(key: str) -> str:
        cache.forget(key)  # an update lands while the old value is being read
        return "stale"

    assert cache.get("c", make_and_forget) == "stale"
    assert cache.get("c", lambda k: "fresh") == "fresh"
