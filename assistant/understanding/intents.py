"""The fast intent classifier over the assistant's intents (``understanding/schema.py``).

The classifier is the packaged MiniLM fine-tuned (``understanding.intent_model``) on labelled utterances that live
in the repository (``understanding.intent_data``: Bitext customer support and CLINC150, mapped by
``intent_map.toml``). Those sets hold after-sales, small-talk and off-topic requests, plus thin shopping
material (ordering and shopping-list requests as product_search, food facts as product_question); there is no
recommendation or comparison data, so it never predicts those. The classifier knows the after-sales intents,
chitchat and out_of_scope well; the LLM's structured understanding decides the shopping intents. The
classifier gives a fast prior, a fallback when the LLM is down, and a cross-check (an LLM after-sales or
out-of-scope intent the classifier strongly disagrees with is worth a second look).

A trained model lives in ``settings.models_dir / "intents"``: ``encoder/``, ``head.safetensors`` and
``manifest.json`` (labels, hashes of the data it came from, training settings, held-out metrics).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.understanding.schema import INTENTS
from kefu.errors import IntentError
from kefu.settings import Settings

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class TrainConfig:
    per_label: int = 150  # training rows per intent, spread over its source labels
    open_class_factor: int = 3  # out_of_scope gets this many times per_label: it spans ~125 CLINC labels
    epochs: int = 1
    batch_size: int = 32
    max_length: int = 64  # tokens; longer texts are truncated
    seed: int = 0
    holdout: str = "utterance"  # see assistant.understanding.intent_data: "utterance" or "register"
    threads: int = 2  # torch CPU threads while training (at most the process's own: OMP_NUM_THREADS caps it)
    eval_limit: int | None = None  # held-out rows scored per split (None: all)


def model_dir(settings: Settings) -> Path:
    return settings.models_dir / "intents"


def sources_sha256() -> str:
    """Hash of what a default model is trained from: both data sets, CLINC's domains and the intent map."""
    from assistant.understanding import intent_data as data

    return data.file_sha256(data.bitext_path(), data.clinc_path(), data.clinc_domains_path(), data.default_map_path())


def scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """n, accuracy, macro-F1 over the labels present in ``gold``, per-label precision/recall/F1/support."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    if not gold:
        return {"n": 0, "accuracy": None, "macro_f1": None, "per_label": {}}
    labels = sorted(set(gold))
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    per_label = {
        label: {
            "precision": round(float(p), 4),
            "recall": round(float(r), 4),
            "f1": round(float(f), 4),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    return {
        "n": len(gold),
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(float(f1.mean()), 4),
        "per_label": per_label,
    }


class IntentClassifier:
    """A trained model, loaded once; ``predict`` is thread-safe for reading (torch inference mode)."""

    def __init__(self, directory: Path, manifest: dict[str, Any], tokenizer, net) -> None:
        self.directory = directory
        self.manifest = manifest
        self.labels: list[str] = list(manifest["labels"])
        self.max_length = int(manifest["training"]["max_length"])
        self._tokenizer = tokenizer
        self._net = net

    @classmethod
    def load(cls, settings: Settings | None = None, directory: Path | None = None) -> IntentClassifier:
        if directory is None:
            if settings is None:
                raise TypeError("IntentClassifier.load needs settings or a directory")
            directory = model_dir(settings)
        manifest = read_manifest(directory)
        if manifest is None:
            raise IntentError(f"No trained intent classifier in {directory}; run `kefu intents train`.")
        from assistant.understanding import intent_model

        try:
            tokenizer, net = intent_model.load(directory, len(manifest["labels"]))
        except (OSError, ValueError, RuntimeError) as exc:
            message = f"The model in {directory} is incomplete ({exc}); run `kefu intents train`."
            raise IntentError(message) from exc
        return cls(directory, manifest, tokenizer, net)

    def probabilities(self, texts: Sequence[str]):
        """(len(texts), len(self.labels)) numpy array of probabilities."""
        from assistant.understanding import intent_model

        return intent_model.probabilities(self._net, self._tokenizer, list(texts), max_length=self.max_length)

    def predict_top(self, texts: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """Per text, the ``k`` most likely intents with their probabilities, best first. An empty or blank
        text has nothing to classify: it gets out_of_scope with probability 1."""
        texts = list(texts)
        blank = [not text.strip() for text in texts]
        probs = self.probabilities([text for text, empty in zip(texts, blank, strict=True) if not empty])
        result, row = [], 0
        for empty in blank:
            if empty:
                result.append([("out_of_scope", 1.0)])
                continue
            best = probs[row].argsort()[::-1][:k]
            result.append([(self.labels[i], round(float(probs[row][i]), 4)) for i in best])
            row += 1
        return result

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """Per text, (the most likely intent, its probability)."""
        return [top[0] for top in self.predict_top(texts, k=1)]


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntentError(f"Unreadable {path} ({exc}); retrain with `kefu intents train`.") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise IntentError(f"{path} has an old format; retrain with `kefu intents train`.")
    return manifest


def evaluate(classifier: IntentClassifier, texts: Sequence[str], gold: Sequence[str]) -> dict[str, Any]:
    """``scores`` plus inference speed (ms per utterance, batched)."""
    started = time.perf_counter()
    predicted = [label for label, _ in classifier.predict(texts)]
    elapsed = time.perf_counter() - started
    return {
        **scores(list(gold), predicted),
        "ms_per_utterance": round(1000 * elapsed / max(len(texts), 1), 2),
    }


def train(
    settings: Settings,
    config: TrainConfig = TrainConfig(),
    *,
    out_dir: Path | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune, save, score the held-out splits; returns the manifest. The model replaces ``out_dir`` only
    once it is complete."""
    import torch

    from assistant.understanding import intent_data as data
    from assistant.understanding import intent_model
    from kefu.embedder import default_model_path

    out_dir = out_dir or model_dir(settings)
    base = settings.embed_model or default_model_path()
    mapping = data.load_intent_map()
    pool, tests = data.split(
        data.load_bitext(mapping),
        data.load_clinc(mapping),
        config.holdout,  # type: ignore[arg-type]
        seed=config.seed,
    )
    caps = {"out_of_scope": config.per_label * config.open_class_factor}
    rows = data.sample_per_label(pool, config.per_label, seed=config.seed, caps=caps)
    labels = sorted(rows["intent"].unique())
    index = {label: i for i, label in enumerate(labels)}

    threads = torch.get_num_threads()
    torch.set_num_threads(min(config.threads, threads))
    try:
        started = time.perf_counter()
        tokenizer, net = intent_model.from_base(base, len(labels), seed=config.seed)
        losses = intent_model.fit(
            net,
            tokenizer,
            rows["text"].tolist(),
            [index[x] for x in rows["intent"]],
            epochs=config.epochs,
            batch_size=config.batch_size,
            max_length=config.max_length,
            seed=config.seed,
            on_step=on_step,
        )
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)

    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    intent_model.save(net, tokenizer, staging)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "labels": labels,
        "never_predicted": sorted(set(INTENTS) - set(labels)),
        "base_model": str(base),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {"sources_sha256": sources_sha256(), "training_rows_sha256": data.rows_sha256(rows)},
        "training": {
            **asdict(config),
            "rows": len(rows),
            "rows_per_label": rows["intent"].value_counts().to_dict(),
            "seconds": round(seconds, 1),
            "steps": len(losses),
            "loss_per_epoch": [round(sum(part) / len(part), 4) for part in _epochs(losses, config.epochs)],
        },
        "metrics": {},
    }
    classifier = IntentClassifier(staging, manifest, tokenizer, net)
    for name, test in tests.items():
        test.to_csv(staging / f"heldout_{name}.csv", index=False, columns=["text", "intent", "source_label"])
        sample = (
            test
            if config.eval_limit is None
            else test.sample(min(len(test), config.eval_limit), random_state=config.seed)
        )
        manifest["metrics"][name] = evaluate(classifier, sample["text"].tolist(), sample["intent"].tolist())
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return manifest


def _epochs(losses: list[float], epochs: int) -> list[list[float]]:
    """Per-step losses cut into the epochs they came from."""
    size = len(losses) // epochs
    return [losses[i * size : (i + 1) * size] for i in range(epochs)]


def ensure_trained(settings: Settings, on_step: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """The manifest of the model in ``settings``' data dir, training one first (a few minutes on 2 CPU cores)
    when none exists or the data or intent map changed since."""
    try:
        manifest = read_manifest(model_dir(settings))
    except IntentError:  # unreadable or an old format: train afresh
        manifest = None
    if manifest is not None and manifest["data"]["sources_sha256"] == sources_sha256():
        return manifest
    return train(settings, on_step=on_step)
