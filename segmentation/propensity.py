"""Purchase propensity: will the customer place an order in the next N days?

Label: 1 when the customer has at least one counted order in [cutoff, cutoff + N days). Inputs are computed as of
the cutoff from data strictly before it (``build_features(con, as_of=cutoff)`` filters by itself). The split is
by time: the training cutoff's label window ends where the test cutoff begins, so no test-period purchase leaks
into training:

    train cutoff T1 = end - 2N days   (labels from [T1, T1 + N))
    test cutoff  T2 = end - N days    (labels from [T2, end)),   end = the day after the store's last order

Two models, compared on the test cutoff with ROC-AUC and PR-AUC (average precision):
- ``gbm``: scikit-learn HistGradientBoostingClassifier on the numeric behaviour features (the baseline);
- ``minilm``: the packaged all-MiniLM-L6-v2 with a fresh 2-way classification head, fine-tuned with cross-entropy
  on each customer's behaviour serialized as text, most recent order first (``serialize``).
The better one by ROC-AUC is served: it scores every customer as of ``end``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from kefu.errors import StoreError
from segmentation.features import build_features, default_as_of

NON_FEATURES = ("customer_id", "as_of", "top_department", "top_category")


# -- data -----------------------------------------------------------------------------------------------------
def labelled_features(con: duckdb.DuckDBPyConnection, cutoff: datetime, horizon_days: int) -> pd.DataFrame:
    """customer_features as of ``cutoff`` plus ``label`` (ordered within ``horizon_days`` after it).

    Rewrites ``customer_features`` in ``con``: use a scratch workspace, not the fitted one."""
    build_features(con, as_of=cutoff)
    return con.execute(
        """
        SELECT f.*, EXISTS (
            SELECT 1 FROM orders o
            WHERE o.customer_id = f.customer_id AND o.status <> 'cancelled'
              AND o.ordered_at >= $cutoff AND o.ordered_at < $cutoff + to_days($h)
        )::INTEGER AS label
        FROM customer_features f ORDER BY f.customer_id
        """,
        {"cutoff": cutoff, "h": horizon_days},
    ).df()


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c for c in frame.columns if c not in NON_FEATURES and c != "label" and pd.api.types.is_numeric_dtype(frame[c])
    ]


def serialize(
    con: duckdb.DuckDBPyConnection, cutoff: datetime, customer_ids: list[str], max_orders: int = 40
) -> list[str]:
    """Each customer's behaviour before ``cutoff`` as text, most recent order first, e.g.
    ``orders 23 over 310 days | 3d: baked bread 2.49, fluid milk 1.99 | 10d: …`` (returns show a minus amount)."""
    rows = con.execute(
        """
        WITH o AS (
            SELECT order_id, customer_id, date_diff('day', ordered_at::DATE, $cutoff::DATE) AS days_ago,
                   row_number() OVER (PARTITION BY customer_id ORDER BY ordered_at DESC, order_id) AS rank,
                   count(*) OVER (PARTITION BY customer_id) AS n_orders,
                   max(date_diff('day', ordered_at::DATE, $cutoff::DATE)) OVER (PARTITION BY customer_id) AS tenure
            FROM orders WHERE ordered_at < $cutoff AND status <> 'cancelled'
        )
        SELECT o.customer_id, o.n_orders, o.tenure, o.rank, o.days_ago,
               string_agg(lower(coalesce(p.category, p.department, 'item')) || ' '
                          || printf('%.2f', i.amount), ', ' ORDER BY i.line_no) AS items
        FROM o JOIN order_items i USING (order_id) LEFT JOIN products p USING (product_id)
        WHERE o.rank <= $max_orders
        GROUP BY ALL ORDER BY o.customer_id, o.rank
        """,
        {"cutoff": cutoff, "max_orders": max_orders},
    ).fetchall()
    texts: dict[str, list[str]] = {}
    for customer, n_orders, tenure, _rank, days_ago, items in rows:
        parts = texts.setdefault(customer, [f"orders {n_orders} over {tenure} days"])
        parts.append(f"{days_ago}d: {items}")
    return [" | ".join(texts.get(c, ["no orders"])) for c in customer_ids]


# -- the baseline -----------------------------------------------------------------------------------------------
def fit_gbm(frame: pd.DataFrame, columns: list[str], seed: int = 0):
    from sklearn.ensemble import HistGradientBoostingClassifier  # deferred: sklearn is heavy (~1.4 s), fit only

    model = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0, random_state=seed
    )
    with threadpool_limits(1):  # OpenMP threads on busy shared cores thrash (20x slower than one thread)
        return model.fit(frame[columns].astype("float64"), frame["label"])


# -- the seed method: fine-tuned MiniLM ---------------------------------------------------------------------------
@dataclass
class Transformer:
    model: object  # transformers BertForSequenceClassification
    tokenizer: object
    max_length: int

    def predict(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """P(label = 1) per text."""
        import torch  # deferred: heavy, only for the fine-tuned model

        self.model.eval()
        scores = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[start : start + batch_size],
                    truncation=True,
                    padding=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                scores.append(torch.softmax(self.model(**batch).logits, dim=-1)[:, 1].numpy())
        return np.concatenate(scores) if scores else np.zeros(0)

    def save(self, directory: Path) -> None:
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        (directory / "kefu_max_length.txt").write_text(str(self.max_length))

    @classmethod
    def load(cls, directory: Path) -> Transformer:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer  # deferred: heavy

        max_length = int((directory / "kefu_max_length.txt").read_text())
        return cls(
            AutoModelForSequenceClassification.from_pretrained(str(directory)),
            AutoTokenizer.from_pretrained(str(directory)),
            max_length,
        )


def fine_tune(
    texts: list[str],
    labels: np.ndarray,
    model_path: Path,
    *,
    epochs: int = 1,
    max_length: int = 128,
    batch_size: int = 16,
    lr: float = 5e-5,
    freeze_layers: int = 2,
    threads: int = 2,
    seed: int = 0,
    on_step: Callable[[int, int, float], None] | None = None,
) -> tuple[Transformer, list[float]]:
    """Cross-entropy fine-tuning of the packaged MiniLM (its BERT weights, a new 2-way head) on CPU.

    The embeddings and the lowest ``freeze_layers`` encoder layers stay frozen (faster, less forgetting).
    Returns the model and the loss of every step. ``on_step(step, total, loss)`` reports progress."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is first imported
    import torch  # deferred: heavy, only for fine-tuning
    from transformers import AutoModelForSequenceClassification, AutoTokenizer  # deferred: heavy
    from transformers.utils import logging as hf_logging  # deferred: heavy

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    hf_logging.set_verbosity_error()  # the new head's "newly initialized" notice is expected
    root = _hf_folder(model_path)
    tokenizer = AutoTokenizer.from_pretrained(str(root))
    model = AutoModelForSequenceClassification.from_pretrained(str(root), num_labels=2)
    base = model.base_model
    for p in base.embeddings.parameters():
        p.requires_grad = False
    for layer in base.encoder.layer[:freeze_layers]:
        for p in layer.parameters():
            p.requires_grad = False
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    steps_per_epoch = (len(texts) + batch_size - 1) // batch_size
    total = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / max(total, 1)))
    losses: list[float] = []
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(texts))
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx], truncation=True, padding=True, max_length=max_length, return_tensors="pt"
            )
            out = model(**batch, labels=torch.as_tensor(labels[idx], dtype=torch.long))
            out.loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(out.loss.item())
            if on_step:
                on_step(len(losses), total, losses[-1])
    return Transformer(model, tokenizer, max_length), losses


def _hf_folder(model_path: Path) -> Path:
    """The folder holding the BERT config and weights inside a sentence-transformers folder (root or a sub)."""
    for candidate in (model_path, *sorted(p for p in model_path.iterdir() if p.is_dir())):
        if (candidate / "config.json").is_file() and any(candidate.glob("*.safetensors")) | any(
            candidate.glob("pytorch_model.bin")
        ):
            return candidate
    raise StoreError(f"No Hugging Face model (config.json + weights) in {model_path}; set KEFU_EMBED_MODEL.")


# -- the comparison -------------------------------------------------------------------------------------------------
def cutoffs(con: duckdb.DuckDBPyConnection, horizon_days: int) -> tuple[datetime, datetime, datetime]:
    """(train cutoff, test cutoff, end)."""
    end = default_as_of(con)
    return end - timedelta(days=2 * horizon_days), end - timedelta(days=horizon_days), end


def scores(labels: np.ndarray, predicted: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score  # deferred: sklearn is heavy (~1.4 s), fit only

    if len(set(labels.tolist())) < 2:
        raise StoreError(
            "The test window has only one class (everyone or no one bought); use a longer store "
            "history or another --horizon."
        )
    return {
        "roc_auc": round(float(roc_auc_score(labels, predicted)), 4),
        "pr_auc": round(float(average_precision_score(labels, predicted)), 4),
    }


def compare(
    con: duckdb.DuckDBPyConnection,
    model_path: Path,
    *,
    horizon_days: int = 30,
    epochs: int = 1,
    max_length: int = 128,
    train_limit: int | None = None,
    with_transformer: bool = True,
    on_step: Callable[[int, int, float], None] | None = None,
    seed: int = 0,
) -> tuple[dict, dict]:
    """Train both models on the train cutoff, score the test cutoff. Returns (report, fitted models)."""
    t1, t2, end = cutoffs(con, horizon_days)
    train = labelled_features(con, t1, horizon_days)
    test = labelled_features(con, t2, horizon_days)
    if train_limit is not None and len(train) > train_limit:
        train = train.sample(n=train_limit, random_state=seed).sort_values("customer_id").reset_index(drop=True)
    if train["label"].nunique() < 2:
        raise StoreError(f"Every training customer has the same label at cutoff {t1:%Y-%m-%d}; cannot train.")
    columns = numeric_columns(train)
    report = {
        "horizon_days": horizon_days,
        "train_cutoff": f"{t1:%Y-%m-%d}",
        "test_cutoff": f"{t2:%Y-%m-%d}",
        "end": f"{end:%Y-%m-%d}",
        "train_customers": len(train),
        "test_customers": len(test),
        "train_positive_rate": round(float(train["label"].mean()), 4),
        "test_positive_rate": round(float(test["label"].mean()), 4),
    }
    started = time.perf_counter()
    gbm = fit_gbm(train, columns, seed)
    with threadpool_limits(1):
        predicted = gbm.predict_proba(test[columns].astype("float64"))[:, 1]
    report["gbm"] = {
        **scores(test["label"].to_numpy(), predicted),
        "train_s": round(time.perf_counter() - started, 1),
        "features": len(columns),
    }
    models: dict = {"gbm": gbm, "columns": columns}
    if with_transformer:
        started = time.perf_counter()
        texts = serialize(con, t1, train["customer_id"].tolist())
        transformer, losses = fine_tune(
            texts,
            train["label"].to_numpy(),
            model_path,
            epochs=epochs,
            max_length=max_length,
            on_step=on_step,
            seed=seed,
        )
        train_s = time.perf_counter() - started
        predicted = transformer.predict(serialize(con, t2, test["customer_id"].tolist()))
        report["minilm"] = {
            **scores(test["label"].to_numpy(), predicted),
            "train_s": round(train_s, 1),
            "epochs": epochs,
            "max_length": max_length,
            "steps": len(losses),
            "loss_first_10": round(float(np.mean(losses[:10])), 4),
            "loss_last_10": round(float(np.mean(losses[-10:])), 4),
        }
        models["minilm"] = transformer
    candidates = [m for m in ("gbm", "minilm") if m in report]
    report["served"] = max(candidates, key=lambda m: (report[m]["roc_auc"], m == "gbm"))
    return report, models


def score_all(con: duckdb.DuckDBPyConnection, report: dict, models: dict, end: datetime) -> pd.DataFrame:
    """customer_id, propensity: the served model's scores for every customer as of ``end``."""
    build_features(con, as_of=end)
    frame = con.execute("SELECT * FROM customer_features ORDER BY customer_id").df()
    if report["served"] == "minilm":
        predicted = models["minilm"].predict(serialize(con, end, frame["customer_id"].tolist()))
    else:
        with threadpool_limits(1):
            predicted = models["gbm"].predict_proba(frame[models["columns"]].astype("float64"))[:, 1]
    return pd.DataFrame({"customer_id": frame["customer_id"], "propensity": predicted.astype(float)})


def save(directory: Path, report: dict, models: dict) -> None:
    """propensity.json (report, served model, feature columns) and the served model's files."""
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(models["gbm"], directory / "propensity_gbm.joblib")
    if report["served"] == "minilm":
        models["minilm"].save(directory / "propensity_minilm")
    (directory / "propensity.json").write_text(json.dumps({**report, "columns": models["columns"]}, indent=2))


def load_gbm(directory: Path):
    """The GBM and its feature columns, or (None, []) when no propensity model was fitted."""
    path = directory / "propensity_gbm.joblib"
    if not path.is_file():
        return None, []
    return joblib.load(path), json.loads((directory / "propensity.json").read_text())["columns"]
