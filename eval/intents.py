"""``kefu eval intents``: intent accuracy and macro-F1 on any labelled CSV / TSV / JSONL file.

Labels in the file are either the assistant's intents or source labels that the intent map translates (the
package's ``intent_map.toml``: Bitext and CLINC150 labels; ``--label-map`` adds or overrides ``label =
"intent"`` pairs from a TOML ``[labels]`` table). Rows with other labels are counted and listed in
``unknown_labels`` and left out of the scores; rows with an empty text are counted in ``details.empty_texts``
and left out too. Macro-F1 is the mean over the intents present in the gold labels.

Modes: ``classifier`` (the fast intent classifier in the data dir, or ``--model-dir``) and ``assistant`` (the
LLM understanding: ``assistant.understanding``'s structured LLM reading combined with its rules and the
classifier prior, one LLM request per row).
"""

from __future__ import annotations

import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from assistant import understanding
from assistant.understanding.intent_data import load_intent_map
from assistant.understanding.intents import IntentClassifier, read_manifest, scores
from assistant.understanding.intents import model_dir as default_model_dir
from assistant.understanding.schema import INTENTS
from kefu.console import console, print_json, settings_of
from kefu.errors import IntentError
from kefu.llm.client import LLM
from kefu.store import connect


def read_table(path: Path, text_col: str, label_col: str):
    """The two columns as a DataFrame of strings; clear errors for missing, empty, non-UTF-8 or malformed
    files."""
    if not path.is_file():
        raise IntentError(f"No such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in {".jsonl", ".json", ".ndjson"}:
            frame = pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
        elif suffix in {".csv", ".tsv", ".txt"}:
            frame = pd.read_csv(
                path,
                sep="\t" if suffix == ".tsv" else ",",
                dtype=str,
                keep_default_na=False,
                encoding="utf-8",
            )
        else:
            raise IntentError(f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .jsonl.")
    except UnicodeDecodeError as exc:
        raise IntentError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it first, "
            f"e.g. `iconv -f latin1 -t utf-8`."
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise IntentError(f"{path} is empty: it needs a header row and labelled rows.") from exc
    except (ValueError, pd.errors.ParserError) as exc:
        raise IntentError(f"{path} could not be parsed as {suffix[1:].upper()}: {exc}") from exc
    missing = [col for col in (text_col, label_col) if col not in frame.columns]
    if missing:
        raise IntentError(
            f"{path}: no column {', '.join(map(repr, missing))}; columns are {list(frame.columns)}. "
            f"Pass --text-col and --label-col."
        )
    if frame.empty:
        raise IntentError(f"{path} has a header but no rows.")
    return frame[[text_col, label_col]].fillna("").astype(str).set_axis(["text", "label"], axis=1)


def label_table(extra_map: Path | None = None) -> dict[str, str]:
    """Label -> assistant intent: the intents themselves, the package map, then ``extra_map``'s [labels]."""
    table = {intent: intent for intent in INTENTS} | load_intent_map().flat()
    if extra_map is not None:
        try:
            extra = tomllib.loads(extra_map.read_text(encoding="utf-8")).get("labels")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise IntentError(f"Cannot read the label map {extra_map}: {exc}") from exc
        if not isinstance(extra, dict):
            raise IntentError(f'{extra_map} needs a [labels] table of label = "intent" pairs.')
        wrong = {label: target for label, target in extra.items() if target not in set(INTENTS)}
        if wrong:
            raise IntentError(f"{extra_map}: not assistant intents: {wrong}.")
        table |= extra
    return table


def _understand_fn(settings, model_dir: Path | None):
    """A function text -> intent from the assistant's understanding: the LLM's structured reading through
    the rule table and, when a trained model exists, the classifier prior — as the dialogue loop does. The LLM must be
    up: a failed request is an error here, not a silent fallback."""
    read = understanding.understand_with_llm
    llm = LLM.from_settings(settings)
    folder = model_dir or default_model_dir(settings)
    classifier = IntentClassifier.load(directory=folder) if read_manifest(folder) else None
    vocabulary: frozenset[str] = frozenset()
    if settings.store_path.is_file():  # catalogue words, as the dialogue loop uses them
        with connect(settings.store_path) as con:
            vocabulary = understanding.catalogue_vocabulary(con)

    def intent_of(text: str) -> str:
        intents = classifier.predict_top([text], k=3)[0] if classifier else []
        reading = read(llm, text, None, settings.llm_reads_slots)
        return str(
            understanding.understand(understanding.Evidence(text, reading, intents, vocabulary=vocabulary)).intent
        )

    return intent_of


def evaluate_file(
    settings,
    data: Path,
    text_col: str,
    label_col: str,
    *,
    mode: str = "classifier",
    label_map: Path | None = None,
    model_dir: Path | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    if mode not in {"classifier", "assistant"}:
        raise IntentError(f"Unknown --mode {mode!r}; use classifier or assistant.")
    frame = read_table(data, text_col, label_col)
    rows_read = len(frame)
    table = label_table(label_map)
    frame["intent"] = frame["label"].map(table)
    unknown = frame["intent"].isna()
    empty = ~unknown & (frame["text"].str.strip() == "")
    scored = frame[~unknown & ~empty]
    if limit is not None:
        scored = scored.head(limit)
    texts, gold = scored["text"].tolist(), scored["intent"].tolist()

    started = time.perf_counter()
    if mode == "classifier":
        classifier = IntentClassifier.load(settings, model_dir)
        model, model_labels = str(classifier.directory), classifier.labels
        predicted = [label for label, _ in classifier.predict(texts)]
    else:
        intent_of = _understand_fn(settings, model_dir)
        model, model_labels = "assistant.understanding", None
        predicted = [intent_of(text) for text in texts]
    elapsed = time.perf_counter() - started

    result = scores(gold, predicted)
    return {
        "n": result["n"],
        "accuracy": result["accuracy"],
        "macro_f1": result["macro_f1"],
        "unknown_labels": sorted(frame.loc[unknown, "label"].unique()),
        "details": {
            "mode": mode,
            "model": model,
            "file": str(data),
            "rows_read": rows_read,
            "unknown_rows": int(unknown.sum()),
            "empty_texts": int(empty.sum()),
            "labels_model_cannot_predict": sorted(set(gold) - set(model_labels)) if model_labels else [],
            "ms_per_utterance": round(1000 * elapsed / max(len(texts), 1), 2),
            "confusions": [
                {"gold": g, "predicted": p, "count": c}
                for (g, p), c in Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p).most_common(10)
            ],
            "per_label": result["per_label"],
        },
    }


def intents_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="CSV, TSV or JSONL file with a text and a label column."),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the utterance."),
    label_col: str = typer.Option("intent", "--label-col", help="Column holding the gold label."),
    mode: str = typer.Option("classifier", "--mode", help="classifier (fast model) or assistant (LLM)."),
    label_map: Path | None = typer.Option(None, "--label-map", help="TOML with a [labels] table: label = intent."),
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Classifier folder (default: data dir)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Score only the first N usable rows."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Intent accuracy and macro-F1 of the fast classifier or the LLM understanding on a labelled file."""
    result = evaluate_file(
        settings_of(ctx),
        data,
        text_col,
        label_col,
        mode=mode,
        label_map=label_map,
        model_dir=model_dir,
        limit=limit,
    )
    if as_json:
        print_json(result)
        return
    details = result["details"]
    console.print(
        f"{mode}: n={result['n']} accuracy={result['accuracy']} macro_f1={result['macro_f1']} "
        f"({details['ms_per_utterance']} ms/utterance)"
    )
    if result["unknown_labels"]:
        console.print(f"left out: {details['unknown_rows']} rows with unknown labels {result['unknown_labels']}")
    if details["empty_texts"]:
        console.print(f"left out: {details['empty_texts']} rows with an empty text")
