"""The fast intent classifier, trained for real on a small subset once per module (about a minute on 2 cores),
and ``kefu eval intents`` on small files."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from assistant.understanding import intent_data, intents
from assistant.understanding.intents import IntentClassifier, TrainConfig
from eval.intents import evaluate_file
from kefu.errors import IntentError
from kefu.settings import Settings
from ui.cli import app

TINY = TrainConfig(per_label=24, epochs=2, eval_limit=60)
OBVIOUS = {  # none of these texts (normalized) is in either data set ("where is my order" itself is)
    "hey where is my order now": "order_status",
    "I want my money back": "return_refund",
    "what's the weather in Paris": "out_of_scope",
    "hello there, how are you doing": "chitchat",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(settings, manifest) of a small model trained in this test session."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("intents"))
    manifest = intents.train(settings, TINY)
    return settings, manifest


@pytest.fixture(scope="module")
def classifier(tiny):
    return IntentClassifier.load(tiny[0])


def test_obvious_texts_are_not_in_the_training_data():
    mapping = intent_data.load_intent_map()
    groups = set(intent_data.load_bitext(mapping)["group"]) | set(intent_data.load_clinc(mapping)["group"])
    assert not {intent_data.normalize(text) for text in OBVIOUS} & groups


def test_training_lowers_the_loss(tiny):
    first, second = tiny[1]["training"]["loss_per_epoch"]
    assert second < first


def test_tiny_model_classifies_obvious_held_out_utterances(classifier):
    predicted = [label for label, _ in classifier.predict(list(OBVIOUS))]
    assert predicted == list(OBVIOUS.values())


def test_manifest_records_labels_data_and_held_out_metrics(tiny, classifier):
    settings, manifest = tiny
    assert manifest == json.loads((intents.model_dir(settings) / "manifest.json").read_text())
    assert classifier.labels == manifest["labels"]
    assert {"order_status", "return_refund", "out_of_scope", "chitchat", "product_search"} <= set(manifest["labels"])
    assert {"recommendation", "comparison"} == set(manifest["never_predicted"])
    assert manifest["data"]["sources_sha256"] == intents.sources_sha256()
    assert manifest["training"]["rows"] == 24 * (len(manifest["labels"]) - 1) + 24 * 3  # out_of_scope: 3x
    for name in ["bitext_utterance", "clinc_val"]:
        metrics = manifest["metrics"][name]
        assert metrics["n"] == 60 and 0 <= metrics["accuracy"] <= 1 and metrics["ms_per_utterance"] > 0
        assert (intents.model_dir(settings) / f"heldout_{name}.csv").is_file()
    assert manifest["metrics"]["bitext_utterance"]["accuracy"] >= 0.8  # even 24 examples per intent do this
    assert not (intents.model_dir(settings).parent / "intents.partial").exists()


def test_predict_top_and_bad_input(classifier):
    top = classifier.predict_top(["cancel my order please", "", "   ", "x" * 100_000, "где мой заказ 📦"], k=3)
    assert len(top) == 5
    probs = [p for _, p in top[0]]
    assert len(top[0]) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    assert top[1] == top[2] == [("out_of_scope", 1.0)]  # nothing to classify
    assert top[3][0][0] in classifier.labels and top[4][0][0] in classifier.labels
    started = time.perf_counter()
    classifier.predict(["x" * 100_000] * 8)  # cut to max_length tokens, not tokenized whole
    assert time.perf_counter() - started < 30
    assert classifier.predict([]) == []


def test_load_without_a_model_says_what_to_run(settings):
    with pytest.raises(IntentError, match="kefu intents train"):
        IntentClassifier.load(settings)
    folder = intents.model_dir(settings)
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(IntentError, match="kefu intents train"):
        IntentClassifier.load(settings)


def test_load_with_missing_weights_says_what_to_run(tiny, settings):
    shutil.copytree(intents.model_dir(tiny[0]), intents.model_dir(settings))
    (intents.model_dir(settings) / "head.safetensors").unlink()
    with pytest.raises(IntentError, match="incomplete"):
        IntentClassifier.load(settings)


def test_ensure_trained_keeps_a_current_model_and_retrains_a_stale_one(tiny, settings, monkeypatch):
    shutil.copytree(intents.model_dir(tiny[0]), intents.model_dir(settings))
    calls = []
    monkeypatch.setattr(intents, "train", lambda s, on_step=None: calls.append(s) or {"trained": True})
    assert intents.ensure_trained(settings) == tiny[1] and calls == []
    manifest_path = intents.model_dir(settings) / "manifest.json"
    stale = {**tiny[1], "data": {**tiny[1]["data"], "sources_sha256": "old"}}
    manifest_path.write_text(json.dumps(stale))
    assert intents.ensure_trained(settings) == {"trained": True} and calls == [settings]


# -- kefu eval intents ---------------------------------------------------------------------------------------
def _eval(settings, *args):
    env = {"KEFU_DATA_DIR": str(settings.data_dir)}
    return CliRunner().invoke(app, ["eval", "intents", *args], env=env)


def test_eval_json_with_mixed_labels_unknowns_and_empty_texts(tiny, classifier, tmp_path):
    rows = [
        ("where is my parcel right now", "order_status"),  # an assistant intent
        ("i want a refund for the broken kettle", "get_refund"),  # a Bitext label
        ("will it rain tomorrow in Oslo", "weather"),  # a CLINC label
        ("good morning!", "greeting"),
        ("buy me a llama", "llama_shopping"),  # unknown: reported, not scored
        ("", "order_status"),  # empty: counted, not scored
    ]
    data = tmp_path / "turns.csv"
    data.write_text("utterance,label\n" + "\n".join(f'"{t}",{label}' for t, label in rows) + "\n")
    result = _eval(tiny[0], "--data", str(data), "--text-col", "utterance", "--label-col", "label", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"n", "accuracy", "macro_f1", "unknown_labels"} <= set(out)
    assert out["n"] == 4 and out["unknown_labels"] == ["llama_shopping"]
    assert out["details"]["unknown_rows"] == 1 and out["details"]["empty_texts"] == 1
    gold = ["order_status", "return_refund", "out_of_scope", "chitchat"]
    predicted = [label for label, _ in classifier.predict([t for t, _ in rows[:4]])]
    assert out["accuracy"] == round(sum(g == p for g, p in zip(gold, predicted, strict=True)) / 4, 4)
    assert set(out["details"]["per_label"]) == set(gold)


def test_eval_jsonl_label_map_and_assistant_labels_the_model_lacks(tiny, tmp_path):
    data = tmp_path / "turns.jsonl"
    data.write_text(
        json.dumps({"q": "my package has not arrived", "y": "wismo"})
        + "\n"
        + json.dumps({"q": "which of these two is cheaper", "y": "comparison"})
        + "\n"
    )
    label_map = tmp_path / "labels.toml"
    label_map.write_text('[labels]\nwismo = "order_status"\n')
    out = evaluate_file(tiny[0], data, "q", "y", label_map=label_map)
    assert out["n"] == 2 and out["unknown_labels"] == []
    assert out["details"]["labels_model_cannot_predict"] == ["comparison"]
    label_map.write_text('[labels]\nwismo = "where_is_my_order"\n')
    with pytest.raises(IntentError, match="not assistant intents"):
        evaluate_file(tiny[0], data, "q", "y", label_map=label_map)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"text,intent\n", "no rows"),
        (b"words,intent\nhello,greeting\n", "no column 'text'"),
        ("text,intent\nmon colis est arrivé abîmé,complaint\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_eval_bad_files_get_clear_errors(tiny, tmp_path, content, message):
    data = tmp_path / "bad.csv"
    data.write_bytes(content)
    with pytest.raises(IntentError, match=message):
        evaluate_file(tiny[0], data, "text", "intent")


def test_eval_cli_prints_errors_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")} | {"KEFU_DATA_DIR": str(tmp_path)}
    command = "from ui.cli import main; main()"
    args = ["eval", "intents", "--data", str(tmp_path / "missing.csv"), "--json"]
    result = subprocess.run(
        [sys.executable, "-c", command, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2
    assert "No such file" in result.stderr and "Traceback" not in result.stderr and result.stdout == ""


def test_eval_assistant_mode_with_the_llm_down_is_an_error(tiny, tmp_path, monkeypatch):
    from kefu.errors import KefuError

    data = tmp_path / "t.csv"
    data.write_text("text,intent\nwhere is my order,order_status\n")
    down = Settings(data_dir=tiny[0].data_dir, llm_url="http://127.0.0.1:9/v1", llm_retries=0, llm_timeout_s=5)
    with pytest.raises(KefuError):
        evaluate_file(down, data, "text", "intent", mode="assistant")
    with pytest.raises(IntentError, match="--mode"):
        evaluate_file(down, data, "text", "intent", mode="oracle")
