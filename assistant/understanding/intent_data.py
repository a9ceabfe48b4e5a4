"""Labelled utterances for the fast intent classifier, their labels mapped onto the assistant's intents.

Sources (committed under ``data/`` with their licences): Bitext customer support (``flags, utterance,
category, intent``; 27 after-sales intents) and CLINC150 (``split, text, intent``; 150 intents in 10 domains
plus ``oos``). ``intent_map.toml`` (package data) says which assistant intent each source label becomes.

Held-out splits are fixed by a seed so that the persisted model's metrics can be recomputed:
- ``utterance``: Bitext rows grouped by their normalized text (lowercase, punctuation and extra spaces
  removed, so near-duplicates never straddle the split), one stratified fifth held out; CLINC's own train /
  val split.
- ``register``: Bitext rows carrying the colloquial (Q), noisy-spelling (Z) or offensive (W) flags are held
  out and training sees only the other registers: does the model generalize to wordings it never saw a variant
  of?
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import pandas as pd

from assistant.understanding.schema import INTENTS
from kefu.errors import IntentError

Holdout = Literal["utterance", "register"]
HELD_OUT_FLAGS = "QZW"
COLUMNS = ["text", "intent", "source", "source_label", "flags", "split", "group"]


def data_root() -> Path:
    """``data/`` at the repository root (beside the packages)."""
    return Path(__file__).resolve().parents[2] / "data"


def bitext_path() -> Path:
    return data_root() / "bitext_customer_support" / "train.csv"


def clinc_path() -> Path:
    return data_root() / "clinc150" / "train_val.jsonl"


def clinc_domains_path() -> Path:
    return data_root() / "clinc150" / "domains.json"


def default_map_path() -> Path:
    return Path(str(resources.files("assistant.understanding") / "intent_map.toml"))


def normalize(text: str) -> str:
    """Lowercase, apostrophes dropped, other non-alphanumerics as single spaces: the grouping key for
    near-duplicate utterances."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", re.sub(r"['’]", "", text.lower())).split())


def file_sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class IntentMap:
    """Source label -> assistant intent, per data set."""

    bitext: dict[str, str]
    clinc_domains: dict[str, str]
    clinc_intents: dict[str, str]
    clinc_domain_of: dict[str, str]  # clinc intent -> its domain (domains.json)

    def clinc(self, label: str) -> str | None:
        if label in self.clinc_intents:
            return self.clinc_intents[label]
        domain = self.clinc_domain_of.get(label)
        return self.clinc_domains.get(domain) if domain else None

    def flat(self) -> dict[str, str]:
        """Every known source label -> intent; raises when the two data sets disagree on a shared label name."""
        table = {label: self.clinc(label) for label in [*self.clinc_domain_of, *self.clinc_intents]}
        for label, intent in self.bitext.items():
            if table.get(label, intent) != intent:
                raise IntentError(f"Label {label!r} maps to {table[label]!r} for CLINC and {intent!r} for Bitext.")
            table[label] = intent
        return {label: intent for label, intent in table.items() if intent is not None}


def load_intent_map(path: Path | None = None, domains_path: Path | None = None) -> IntentMap:
    """Read and check the map: every target must be an assistant intent, every CLINC domain must be mapped."""

    path = path or default_map_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise IntentError(f"Cannot read the intent map {path}: {exc}") from exc
    clinc = raw.get("clinc", {})
    domains = json.loads((domains_path or clinc_domains_path()).read_text(encoding="utf-8"))
    mapping = IntentMap(
        bitext=dict(raw.get("bitext", {})),
        clinc_domains=dict(clinc.get("domains", {})),
        clinc_intents=dict(clinc.get("intents", {})),
        clinc_domain_of={label: domain for domain, labels in domains.items() for label in labels},
    )
    valid = set(INTENTS)
    for table_name, table in [
        ("bitext", mapping.bitext),
        ("clinc.domains", mapping.clinc_domains),
        ("clinc.intents", mapping.clinc_intents),
    ]:
        wrong = {label: target for label, target in table.items() if target not in valid}
        if wrong:
            raise IntentError(f"{path} [{table_name}]: not assistant intents: {wrong}; valid: {sorted(valid)}.")
    unmapped = sorted(set(domains) - set(mapping.clinc_domains))
    if unmapped:
        raise IntentError(f"{path}: CLINC domains without an intent: {unmapped}. Add them to [clinc.domains].")
    return mapping


def _mapped(frame: pd.DataFrame, lookup, source: str, path: Path) -> pd.DataFrame:
    frame["intent"] = frame["source_label"].map(lookup)
    missing = sorted(frame.loc[frame["intent"].isna(), "source_label"].unique())
    if missing:
        raise IntentError(f"{path}: {source} labels not in the intent map: {missing}. Map each one in intent_map.toml.")
    frame["source"] = source
    frame["group"] = frame["text"].map(normalize)
    return frame[COLUMNS]


def load_bitext(mapping: IntentMap, path: Path | None = None) -> pd.DataFrame:
    path = path or bitext_path()
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = pd.DataFrame({"text": raw["utterance"], "source_label": raw["intent"], "flags": raw["flags"], "split": ""})
    return _mapped(frame, mapping.bitext.get, "bitext", path)


def load_clinc(mapping: IntentMap, path: Path | None = None) -> pd.DataFrame:
    path = path or clinc_path()
    raw = pd.read_json(path, lines=True, dtype=str)
    frame = pd.DataFrame({"text": raw["text"], "source_label": raw["intent"], "flags": "", "split": raw["split"]})
    return _mapped(frame, mapping.clinc, "clinc", path)


def split(
    bitext: pd.DataFrame, clinc: pd.DataFrame, holdout: Holdout = "utterance", seed: int = 0
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """(training pool, {test split name: held-out rows}). Nothing in a held-out split shares a normalized text
    with the training pool."""
    from sklearn.model_selection import train_test_split

    if holdout == "utterance":
        label_of_group = bitext.groupby("group")["source_label"].first()  # (near-)duplicates share a label
        groups, labels = label_of_group.index.to_numpy(), label_of_group.to_numpy()
        _, test_groups = train_test_split(groups, test_size=0.2, stratify=labels, random_state=seed)
        held = bitext["group"].isin(set(test_groups))
    elif holdout == "register":
        held = bitext["flags"].map(lambda flags: any(flag in flags for flag in HELD_OUT_FLAGS))
    else:
        raise IntentError(f"Unknown holdout {holdout!r}; use 'utterance' or 'register'.")
    clinc_train = clinc[clinc["split"].isin(["train", "oos_train"])]
    pool = pd.concat([bitext[~held], clinc_train], ignore_index=True)
    seen = set(pool["group"])
    bitext_test = bitext[held & ~bitext["group"].isin(seen)]
    clinc_test = clinc[clinc["split"].isin(["val", "oos_val"]) & ~clinc["group"].isin(seen)]
    return pool, {
        f"bitext_{holdout}": bitext_test.reset_index(drop=True),
        "clinc_val": clinc_test.reset_index(drop=True),
    }


def sample_per_label(
    pool: pd.DataFrame, per_label: int, seed: int = 0, caps: dict[str, int] | None = None
) -> pd.DataFrame:
    """At most ``per_label`` rows per intent (``caps`` overrides it per intent), spread evenly over the
    intent's source labels (round robin over a seeded shuffle), so a large source label cannot crowd out the
    small ones."""
    shuffled = pool.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    shuffled["_turn"] = shuffled.groupby(["source", "source_label"]).cumcount()
    ordered = shuffled.sort_values(["intent", "_turn"], kind="stable")
    ordered["_rank"] = ordered.groupby("intent").cumcount()
    limit = ordered["intent"].map(lambda intent: (caps or {}).get(intent, per_label))
    kept = ordered[ordered["_rank"] < limit].sort_values(["intent", "_rank"], kind="stable")
    return kept.drop(columns=["_turn", "_rank"]).reset_index(drop=True)


def rows_sha256(frame: pd.DataFrame) -> str:
    """Hash of the (text, intent) rows a model was trained on, in order."""
    digest = hashlib.sha256()
    for text, intent in zip(frame["text"], frame["intent"], strict=True):
        digest.update(f"{intent}\t{text}\n".encode())
    return digest.hexdigest()
