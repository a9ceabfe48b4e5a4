"""Behavioural clusters: standardized behaviour features plus a semantic taste vector, grouped by k-means.

The space a customer lives in has two blocks:
- numeric: the behaviour features of ``customer_features`` (heavy-tailed ones log1p-ed, missing values set to the
  fit-time median, then standardized and clipped to ±5);
- taste: the mean embedding of the titles of the products the customer bought (each distinct product embedded
  once with the project's embedder and cached per product), reduced by PCA and scaled so that the whole block
  carries ``taste_weight`` times the numeric block's variance.

Two methods: k-means with k chosen by silhouette (default), or a Gaussian mixture (diagonal covariances) with k
chosen by BIC; both report silhouette and, for the mixture, BIC per k. Stability is the mean adjusted Rand index
between the chosen clustering and fits of the same method on bootstrap samples with other seeds (each fit
predicting every customer). The fitted model is plain arrays and a JSON header (no pickle), so new customers can
be assigned later (nearest centroid, or the most likely mixture component). Left out: any non-linear 2-D map
(the report's map is the first two principal axes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

from kefu.errors import StoreError

NUMERIC_FEATURES = (
    "recency_days", "frequency", "monetary", "tenure_days", "avg_basket_value", "avg_basket_size",
    "interpurchase_days", "discount_share", "coupon_share", "private_label_share", "weekend_share",
    "evening_share", "hour_mean", "trend_90d", "n_views", "n_carts", "n_coupon_redemptions",
)  # fmt: skip  # dept_<name> shares are left out: the taste vector carries what customers buy
LOG_FEATURES = frozenset({
    "recency_days", "frequency", "monetary", "tenure_days", "avg_basket_value", "avg_basket_size",
    "interpurchase_days", "n_views", "n_carts", "n_coupon_redemptions",
})  # fmt: skip
CLIP = 5.0


# -- taste vectors ---------------------------------------------------------------------------------------
class TitleEmbeddingCache:
    """Product title embeddings kept in one .npz file: product id and a hash of its title -> vector."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}  # "product_id\x1ftitle-hash" -> (dim,) float32
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as data:
                self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    @staticmethod
    def key(product_id: str, title: str) -> str:
        return f"{product_id}\x1f{hashlib.sha1(title.encode()).hexdigest()[:12]}"

    def embed(self, products: pd.DataFrame, embedder) -> np.ndarray:
        """(len(products), dim) for a frame with product_id and title; embeds only titles not cached yet, each
        distinct title once (the demo store's 20,897 bought products have about 9,000)."""
        keys = [self.key(p, t) for p, t in zip(products["product_id"], products["title"], strict=True)]
        missing = [i for i, k in enumerate(keys) if k not in self.vectors]
        if missing:
            titles = list(dict.fromkeys(products["title"].iloc[i] for i in missing))
            fresh = dict(zip(titles, embedder.encode(titles), strict=True))
            for i in missing:
                self.vectors[keys[i]] = fresh[products["title"].iloc[i]]
            self.save()
        if not keys:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.vectors), dtype=str)
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(tmp, keys=keys, vectors=np.stack(list(self.vectors.values())))
        tmp.replace(self.path)


def purchase_matrix(con: duckdb.DuckDBPyConnection, customer_ids: list[str]) -> tuple[sparse.csr_matrix, pd.DataFrame]:
    """(customers x products sparse matrix of order lines bought (returns excluded; rows in ``customer_ids``
    order), the products of its columns: product_id, title). Only products with a title count. One scan of the
    order lines in DuckDB; nothing per line passes through Python."""
    ids = pd.DataFrame({"customer_id": customer_ids, "row": np.arange(len(customer_ids), dtype=np.int64)})
    con.register("_taste_ids", ids)
    try:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _bought AS
            SELECT c.row, i.product_id, count(*) AS n
            FROM orders o JOIN _taste_ids c USING (customer_id) JOIN order_items i USING (order_id)
                 JOIN products p USING (product_id)
            WHERE NOT i.is_return AND p.title IS NOT NULL
            GROUP BY ALL
        """)
    finally:
        con.unregister("_taste_ids")
    products = con.execute("""
        SELECT product_id, title FROM products WHERE product_id IN (SELECT product_id FROM _bought)
        ORDER BY product_id
    """).df()
    cells = con.execute("""
        SELECT b.row, p.col, b.n
        FROM _bought b JOIN (SELECT product_id, row_number() OVER (ORDER BY product_id) - 1 AS col
                             FROM (SELECT DISTINCT product_id FROM _bought)) p USING (product_id)
    """).fetchnumpy()
    con.execute("DROP TABLE _bought")
    matrix = sparse.csr_matrix(
        (cells["n"].astype(np.float32), (cells["row"], cells["col"])), shape=(len(customer_ids), len(products))
    )
    return matrix, products


def taste_of(counts: sparse.csr_matrix, vectors: np.ndarray) -> np.ndarray:
    """(rows of counts, dim): each row's purchase-count weighted mean title embedding, unit length; zeros for a
    row with no purchased product that has a title."""
    taste = np.asarray(counts @ vectors)
    norms = np.linalg.norm(taste, axis=1, keepdims=True)
    return (taste / np.where(norms > 0, norms, 1.0)).astype(np.float32)


# -- the model --------------------------------------------------------------------------------------------
@dataclass
class ClusterModel:
    features: list[str]  # numeric feature names, in column order
    log_features: list[str]
    medians: np.ndarray  # (n_features,) after log1p, for missing values
    mean: np.ndarray  # (n_features,) standardization
    scale: np.ndarray  # (n_features,)
    taste_mean: np.ndarray  # (dim,) PCA centre of taste vectors
    taste_components: np.ndarray  # (n_taste, dim) PCA axes
    taste_scale: float  # multiplies projected taste so the block carries taste_weight of the variance
    centroids: np.ndarray  # (k, n_features + n_taste); the component means for a mixture
    map_axes: np.ndarray  # (2, n_features + n_taste) first two principal axes of the joint space
    map_mean: np.ndarray  # (n_features + n_taste,)
    report: dict = field(default_factory=dict)  # k, silhouette_by_k, stability_ari, ...
    method: str = "kmeans"  # or "gmm"
    variances: np.ndarray | None = None  # (k, n_features + n_taste) diagonal covariances of a mixture
    weights: np.ndarray | None = None  # (k,) mixture weights

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def numeric_block(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise StoreError(f"customer_features lacks columns {missing}; re-run `kefu segment fit`.")
        values = frame[list(self.features)].astype("float64").to_numpy(copy=True)
        for j, name in enumerate(self.features):
            if name in self.log_features:
                values[:, j] = np.log1p(np.clip(values[:, j], 0, None))
        values = np.where(np.isnan(values), self.medians, values)
        return np.clip((values - self.mean) / self.scale, -CLIP, CLIP)

    def project_taste(self, taste: np.ndarray | None, n: int) -> np.ndarray:
        """(n, n_taste) taste block; None (taste unknown, e.g. a brand-new customer) = the population centre."""
        if taste is None:
            return np.zeros((n, self.taste_components.shape[0]))
        return (taste.astype(np.float64) - self.taste_mean) @ self.taste_components.T * self.taste_scale

    def embed(self, frame: pd.DataFrame, taste: np.ndarray | None) -> np.ndarray:
        """The joint space: (n, n_features + n_taste)."""
        return np.hstack([self.numeric_block(frame), self.project_taste(taste, len(frame))])

    def predict(self, space: np.ndarray) -> np.ndarray:
        """Cluster of each row: the nearest centroid, or for a mixture the component with the highest posterior
        (what sklearn's GaussianMixture.predict gives). (n, k) memory, not (n, k, dim)."""
        if self.method == "gmm":
            precision = 1.0 / self.variances
            log_density = (np.log(self.weights) - 0.5 * np.log(2 * np.pi * self.variances).sum(axis=1))[
                None, :
            ] - 0.5 * (
                (space**2) @ precision.T
                - 2.0 * space @ (self.centroids * precision).T
                + (self.centroids**2 * precision).sum(axis=1)[None, :]
            )
            return log_density.argmax(axis=1)
        distance = (self.centroids**2).sum(axis=1)[None, :] - 2.0 * space @ self.centroids.T
        return distance.argmin(axis=1)

    def assign(self, frame: pd.DataFrame, taste: np.ndarray | None) -> np.ndarray:
        """The cluster of each row."""
        return self.predict(self.embed(frame, taste))

    def map_2d(self, space: np.ndarray) -> np.ndarray:
        return (space - self.map_mean) @ self.map_axes.T

    # Persistence: arrays in clusters.npz, the rest in clusters.json.
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in ARRAYS}
        if self.method == "gmm":
            arrays |= {"variances": self.variances, "weights": self.weights}
        np.savez(directory / "clusters.npz", **arrays)
        header = {
            "features": self.features,
            "log_features": self.log_features,
            "taste_scale": self.taste_scale,
            "method": self.method,
            "report": self.report,
        }
        (directory / "clusters.json").write_text(json.dumps(header, indent=2, default=float))

    @classmethod
    def load(cls, directory: Path) -> ClusterModel:
        if not (directory / "clusters.json").is_file():
            raise StoreError(f"No cluster model in {directory}; run `kefu segment fit` first.")
        header = json.loads((directory / "clusters.json").read_text())
        with np.load(directory / "clusters.npz", allow_pickle=False) as data:
            arrays = {name: data[name] for name in ARRAYS}
            if header.get("method") == "gmm":
                arrays |= {"variances": data["variances"], "weights": data["weights"]}
        return cls(
            features=header["features"],
            log_features=header["log_features"],
            taste_scale=float(header["taste_scale"]),
            report=header["report"],
            method=header.get("method", "kmeans"),
            **arrays,
        )


ARRAYS = ("medians", "mean", "scale", "taste_mean", "taste_components", "centroids", "map_axes", "map_mean")


def fit(
    frame: pd.DataFrame,
    taste: np.ndarray,
    *,
    k_range: range = range(3, 9),
    n_taste: int = 8,
    taste_weight: float = 0.5,
    n_bootstrap: int = 5,
    seed: int = 0,
    method: str = "kmeans",
) -> tuple[ClusterModel, np.ndarray]:
    """Fit the scaler, taste PCA and the clusters (k-means with k by silhouette, or "gmm": a diagonal Gaussian
    mixture with k by BIC); returns the model and each row's cluster."""
    with threadpool_limits(1):  # OpenMP threads on busy shared cores thrash; one thread is faster here
        return _fit(
            frame,
            taste,
            k_range=k_range,
            n_taste=n_taste,
            taste_weight=taste_weight,
            n_bootstrap=n_bootstrap,
            seed=seed,
            method=method,
        )


def _fit(
    frame: pd.DataFrame,
    taste: np.ndarray,
    *,
    k_range: range,
    n_taste: int,
    taste_weight: float,
    n_bootstrap: int,
    seed: int,
    method: str,
) -> tuple[ClusterModel, np.ndarray]:
    from sklearn.decomposition import PCA  # deferred: sklearn is heavy (~1.4 s); only fitting needs it
    from sklearn.metrics import adjusted_rand_score, silhouette_score  # deferred: as above

    if method not in METHODS:
        raise ValueError(f"unknown cluster method {method!r}; use one of {METHODS}")
    if len(frame) != len(taste):
        raise ValueError("frame and taste must have one row per customer, in the same order")
    if len(frame) < 3 * max(k_range):
        raise StoreError(f"Only {len(frame)} customers: too few to cluster into up to {max(k_range)} groups.")
    features = [c for c in NUMERIC_FEATURES if c in frame.columns]
    raw = frame[features].astype("float64").to_numpy(copy=True)
    log_features = [c for c in features if c in LOG_FEATURES]
    for j, name in enumerate(features):
        if name in LOG_FEATURES:
            raw[:, j] = np.log1p(np.clip(raw[:, j], 0, None))
    medians = np.nan_to_num(np.nanmedian(raw, axis=0))
    raw = np.where(np.isnan(raw), medians, raw)
    scale = raw.std(axis=0)
    keep = scale > 1e-9  # constant columns (e.g. no view events in the shop) carry nothing
    features = [f for f, k in zip(features, keep, strict=True) if k]
    log_features = [f for f in log_features if f in features]
    numeric = np.clip((raw[:, keep] - raw[:, keep].mean(axis=0)) / scale[keep], -CLIP, CLIP)

    n_taste = min(n_taste, taste.shape[1], len(frame) - 1)
    if taste.var(axis=0).sum() < 1e-12:  # no product texts (e.g. a store built from a bare transaction file)
        n_taste = 0
    taste_mean, components, explained = taste.mean(axis=0).astype(np.float64), np.zeros((0, taste.shape[1])), 0.0
    if n_taste:
        pca = PCA(n_components=n_taste, random_state=seed).fit(taste.astype(np.float64))
        taste_mean, components = pca.mean_, pca.components_
        explained = float(pca.explained_variance_ratio_.sum())
    projected = (taste.astype(np.float64) - taste_mean) @ components.T
    taste_scale = (
        float(np.sqrt(taste_weight * numeric.shape[1] / max(projected.var(axis=0).sum(), 1e-12))) if n_taste else 1.0
    )
    space = np.hstack([numeric, projected * taste_scale])

    silhouette_by_k: dict[int, float] = {}
    bic_by_k: dict[int, float] = {}
    fits = {}
    for k in k_range:
        fits[k] = _one_fit(method, k, space, seed=seed, n_init=4 if method == "kmeans" else 2)
        labels = fits[k].predict(space)
        if method == "gmm":
            bic_by_k[k] = float(fits[k].bic(space))
        silhouette_by_k[k] = (
            float(silhouette_score(space, labels, sample_size=min(3000, len(space)), random_state=seed))
            if len(set(labels)) > 1
            else -1.0
        )
    best_k = min(bic_by_k, key=bic_by_k.get) if method == "gmm" else max(silhouette_by_k, key=silhouette_by_k.get)
    labels = fits[best_k].predict(space)

    rng = np.random.default_rng(seed)
    aris = []
    for b in range(n_bootstrap):
        sample = rng.choice(len(space), size=len(space), replace=True)
        refit = _one_fit(method, best_k, space[sample], seed=seed + 1 + b, n_init=1)
        aris.append(float(adjusted_rand_score(labels, refit.predict(space))))

    map_pca = PCA(n_components=2, random_state=seed).fit(space)
    model = ClusterModel(
        features=features,
        log_features=log_features,
        medians=medians[keep],
        mean=raw[:, keep].mean(axis=0),
        scale=scale[keep],
        taste_mean=taste_mean,
        taste_components=components,
        taste_scale=taste_scale,
        centroids=fits[best_k].means_ if method == "gmm" else fits[best_k].cluster_centers_,
        map_axes=map_pca.components_,
        map_mean=map_pca.mean_,
        method=method,
        variances=fits[best_k].covariances_ if method == "gmm" else None,
        weights=fits[best_k].weights_ if method == "gmm" else None,
        report={
            "customers": len(frame),
            "method": method,
            "k": int(best_k),
            "silhouette": silhouette_by_k[best_k],
            "silhouette_by_k": silhouette_by_k,
            **({"bic_by_k": bic_by_k} if method == "gmm" else {}),
            "k_at_range_edge": best_k in (min(k_range), max(k_range)) and len(k_range) > 1,  # widen the range?
            "stability_ari": float(np.mean(aris)),
            "stability_ari_runs": aris,
            "numeric_features": features,
            "taste_components": int(n_taste),
            "taste_weight": taste_weight,
            "taste_explained_variance": explained,
        },
    )
    return model, labels


METHODS = ("kmeans", "gmm")


def _one_fit(method: str, k: int, space: np.ndarray, *, seed: int, n_init: int):
    from sklearn.cluster import KMeans  # deferred: sklearn is heavy (~1.4 s); only fitting needs it
    from sklearn.mixture import GaussianMixture  # deferred: as above

    if method == "gmm":
        return GaussianMixture(
            n_components=k, covariance_type="diag", n_init=n_init, reg_covar=1e-4, random_state=seed
        ).fit(space)
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(space)


def cluster_store(
    con: duckdb.DuckDBPyConnection,
    features: pd.DataFrame,
    embedder,
    cache: TitleEmbeddingCache,
    *,
    k_range: range = range(3, 9),
    taste_customers: list[str] | None = None,
    fit_sample: int = 50_000,
    chunk: int = 100_000,
    seed: int = 0,
    method: str = "kmeans",
    progress=lambda _: None,
) -> ClusterModel:
    """Cluster every customer of ``features`` and write table ``customer_clusters`` (customer_id, cluster, x, y
    of the 2-D map, in_fit, taste = the projected taste block); returns the fitted model.

    Taste vectors come from purchased product titles (``taste_customers``: only these; the rest are placed with an
    unknown taste, i.e. the population centre). The scaler, taste PCA and the clusters are fitted on a seeded
    random sample of at most ``fit_sample`` customers (centroids and silhouette are stable long before a million
    rows); every customer is then assigned to its cluster, ``chunk`` customers at a time, so
    memory grows with the sample and the chunk, not with the whole (customers x 384) taste matrix."""
    ids = features["customer_id"].tolist()
    chosen = set(taste_customers or ())
    with_taste = ids if taste_customers is None else [c for c in ids if c in chosen]
    progress(f"clusters: purchases of {len(with_taste):,} customers")
    matrix, products = purchase_matrix(con, with_taste)
    progress(f"clusters: embedding {len(products):,} product titles (cached ones are reused)")
    vectors = cache.embed(products, embedder)
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(len(with_taste), size=min(fit_sample, len(with_taste)), replace=False))
    row_of = pd.Series(np.arange(len(ids)), index=features["customer_id"])
    taste_row = row_of.loc[with_taste].to_numpy()  # features row of each matrix row
    sample = features.iloc[taste_row[fit_rows]].reset_index(drop=True)
    progress(f"clusters: {method} over k={k_range.start}..{k_range.stop - 1} on {len(sample):,} customers")
    model, _ = fit(sample, taste_of(matrix[fit_rows], vectors), k_range=k_range, seed=seed, method=method)
    model.report["fit_sample"] = len(sample)

    n_taste = model.taste_components.shape[0]
    taste_block = model.project_taste(None, len(ids))  # the population centre for customers without taste
    for start in range(0, len(with_taste), chunk):
        part = taste_of(matrix[start : start + chunk], vectors)
        taste_block[taste_row[start : start + chunk]] = model.project_taste(part, len(part))
    space = np.hstack([model.numeric_block(features), taste_block])
    xy = model.map_2d(space)
    in_fit = np.zeros(len(ids), dtype=bool)
    in_fit[taste_row[fit_rows]] = True
    assigned = pd.DataFrame(
        {
            "customer_id": ids,
            "cluster": model.predict(space).astype(np.int32),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "in_fit": in_fit,
        }
    )
    for j in range(n_taste):
        assigned[f"t{j}"] = taste_block[:, j]
    con.register("_assigned", assigned)
    try:
        taste_list = ", ".join(f"t{j}" for j in range(n_taste))
        con.execute(f"""CREATE OR REPLACE TABLE customer_clusters AS
                        SELECT customer_id, cluster, x, y, in_fit, [{taste_list}]::DOUBLE[] AS taste FROM _assigned""")
    finally:
        con.unregister("_assigned")
    return model
