"""Behavioural clusters on the real demo store: taste vectors from real product titles with the project's
embedder, k chosen by silhouette, stability by ARI, persistence and assignment of new customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kefu.embedder import Embedder
from kefu.errors import StoreError
from segmentation import clusters
from segmentation.features import build_features
from segmentation.workspace import workspace
from tests.segmentation_fit import cluster_sample, fitted_data_dir


def purchased_titles(con, customer_ids: list[str]) -> pd.DataFrame:
    """The reference: customer_id, product_id, title, n (order lines bought, returns excluded), in pandas."""
    frame = con.execute("""
        SELECT o.customer_id, i.product_id, p.title, count(*) AS n
        FROM orders o JOIN order_items i USING (order_id) JOIN products p USING (product_id)
        WHERE NOT i.is_return AND p.title IS NOT NULL
        GROUP BY ALL
    """).df()
    return frame[frame["customer_id"].isin(set(customer_ids))].reset_index(drop=True)


class CountingEmbedder:
    """The real embedder, counting the titles it is asked to encode."""

    def __init__(self) -> None:
        self.inner = Embedder()
        self.encoded = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts):
        self.encoded += len(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def fitted(demo_store, tmp_path_factory):
    return fitted_data_dir(demo_store, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def sample(demo_store, fitted):
    """(features of the 30 real customers the shared fit clustered, a workspace connection)."""
    ids = cluster_sample(demo_store)
    with workspace(demo_store) as con:
        build_features(con)
        frame = con.execute("SELECT * FROM customer_features ORDER BY customer_id").df()
        yield frame[frame["customer_id"].isin(set(ids))].reset_index(drop=True), con


@pytest.fixture(scope="module")
def embedder():
    return CountingEmbedder()


@pytest.fixture(scope="module")
def taste(sample, fitted, embedder, tmp_path_factory):
    """Taste vectors of the sample, from the shared fit's title cache (already embedded there)."""
    frame, con = sample
    cache = clusters.TitleEmbeddingCache(fitted[0] / "segments" / "title_embeddings.npz")
    cache.path = None  # read-only use
    before = embedder.encoded
    vectors = taste_vectors(con, frame["customer_id"].tolist(), embedder, cache)
    assert embedder.encoded == before  # every title was in the cache
    return vectors


def test_taste_vectors_embed_each_title_once_and_cache_it(sample, embedder, tmp_path):
    frame, con = sample
    ids = frame["customer_id"].tolist()[:8]
    cache = clusters.TitleEmbeddingCache(tmp_path / "titles.npz")
    start = embedder.encoded
    taste = taste_vectors(con, ids, embedder, cache)
    bought = purchased_titles(con, ids)
    assert taste.shape == (len(ids), 384)
    assert embedder.encoded - start == bought["title"].nunique()  # each distinct title once
    np.testing.assert_allclose(np.linalg.norm(taste, axis=1), 1.0, atol=1e-5)
    # Taste = purchase-count weighted mean of the customer's title embeddings, unit length.
    mine = bought[bought["customer_id"] == ids[0]]
    expected = (embedder.inner.encode(mine["title"].tolist()) * mine["n"].to_numpy()[:, None]).sum(axis=0)
    np.testing.assert_allclose(taste[0], expected / np.linalg.norm(expected), atol=1e-5)
    # Reloaded from disk, the cache answers without encoding anything.
    again = taste_vectors(con, ids, embedder, clusters.TitleEmbeddingCache(tmp_path / "titles.npz"))
    assert embedder.encoded - start == bought["title"].nunique()  # each distinct title once
    np.testing.assert_allclose(again, taste, atol=1e-6)


def test_fit_picks_k_by_silhouette_reports_stability_and_round_trips(sample, taste, tmp_path):
    frame, _ = sample
    model, labels = clusters.fit(frame, taste, k_range=range(2, 5))
    report = model.report
    assert report["k"] == max(report["silhouette_by_k"], key=report["silhouette_by_k"].get)
    assert set(labels) == set(range(model.k))
    assert -1 <= report["stability_ari"] <= 1 and len(report["stability_ari_runs"]) == 5
    assert "n_views" not in model.features  # constant in the demo store (no view events): dropped
    # The saved model (no pickle) assigns every fitted customer to the cluster k-means gave it.
    model.save(tmp_path / "m")
    loaded = clusters.ClusterModel.load(tmp_path / "m")
    assert (loaded.assign(frame, taste) == labels).all()
    # A new customer with unknown taste still gets a cluster.
    newcomer = frame.head(1).copy()
    assert 0 <= loaded.assign(newcomer, None)[0] < model.k


def test_gaussian_mixture_picks_k_by_bic_and_assigns_like_sklearn(sample, taste, tmp_path):
    frame, _ = sample
    model, labels = clusters.fit(frame, taste, k_range=range(2, 5), method="gmm", n_bootstrap=2)
    report = model.report
    assert report["method"] == "gmm" and report["k"] == min(report["bic_by_k"], key=report["bic_by_k"].get)
    assert set(report["silhouette_by_k"]) == set(report["bic_by_k"]) == {2, 3, 4}
    model.save(tmp_path / "g")
    loaded = clusters.ClusterModel.load(tmp_path / "g")
    assert loaded.method == "gmm" and loaded.weights.sum() == pytest.approx(1.0)
    # The saved arrays reproduce sklearn's GaussianMixture.predict (what fit returned) in plain numpy.
    assert (loaded.assign(frame, taste) == labels).all()


def test_mixture_assignment_is_sklearns_where_nearest_centroid_is_not():
    """SYNTHETIC points (a tight and a wide blob): the saved mixture must assign by posterior, not by distance."""
    rng = np.random.default_rng(0)
    space = np.vstack([rng.normal(0, 0.3, (300, 4)), rng.normal(1.5, 3.0, (300, 4))])
    gm = clusters._one_fit("gmm", 2, space, seed=0, n_init=1)
    empty = np.zeros(0)
    model = clusters.ClusterModel(
        features=[],
        log_features=[],
        medians=empty,
        mean=empty,
        scale=empty,
        taste_mean=empty,
        taste_components=np.zeros((0, 0)),
        taste_scale=1.0,
        centroids=gm.means_,
        map_axes=np.zeros((2, 4)),
        map_mean=np.zeros(4),
        method="gmm",
        variances=gm.covariances_,
        weights=gm.weights_,
    )
    points = rng.normal(0.8, 2.0, (2000, 4))
    assert (model.predict(points) == gm.predict(points)).all()
    nearest = ((points[:, None, :] - gm.means_[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert (nearest != gm.predict(points)).sum() > 100  # the two rules really differ here


def test_fit_refuses_too_few_customers(sample):
    frame, _ = sample
    with pytest.raises(StoreError, match="too few"):
        clusters.fit(frame.head(5), np.zeros((5, 384), dtype=np.float32), k_range=range(3, 9))


def test_loading_a_missing_model_says_to_fit(tmp_path):
    with pytest.raises(StoreError, match="kefu segment fit"):
        clusters.ClusterModel.load(tmp_path)


def test_missing_feature_columns_are_named(sample, taste):
    frame, _ = sample
    model, _ = clusters.fit(frame, taste, k_range=range(2, 4), n_bootstrap=1)
    with pytest.raises(StoreError, match="monetary"):
        model.assign(pd.DataFrame({"recency_days": [3]}), None)


def test_pipeline_clusters_every_customer(fitted):
    data_dir, report = fitted
    import duckdb

    con = duckdb.connect(str(data_dir / "segments.duckdb"), read_only=True)
    n, fitted, k = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE in_fit), max(cluster) + 1 FROM customer_clusters"
    ).fetchall()[0]
    con.close()
    assert n == report["customers"] == 2377 and fitted == 30 and k == report["clusters"]["k"]


def taste_vectors(con, customer_ids, embedder, cache):
    """(len(customer_ids), dim): ``taste_of`` each customer's purchases, as cluster_store computes them."""
    matrix, products = clusters.purchase_matrix(con, customer_ids)
    return clusters.taste_of(matrix, cache.embed(products, embedder))
