"""Persona cards: for each cluster, the statistics that set it apart, and a short name and description.

The stats come first and are the card's substance: size and share, the behaviour features whose cluster mean sits
furthest from the population's (z = distance in population standard deviations, measured in the clustering's
standardized space), and the departments and categories the cluster buys most. The LLM sees ONLY those stats
(a JSON-schema constrained request for ``PersonaText``); its text is then checked by ``unsupported_claims``: a
number not in the stats, a department/category not listed, a trait claimed in a direction the stats do not show,
or a demographic claim (the stats have none) rejects the text, and the card falls back to a template built from
the same stats. So does text that names none of the shown traits, lacks a 2-6 word name, or repeats itself (small
models loop). The template is also used when the LLM is down.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from kefu.errors import LLMError

LABELS = {
    "recency_days": "days since last purchase", "frequency": "orders", "monetary": "total spend",
    "tenure_days": "days since first purchase", "avg_basket_value": "average basket value",
    "avg_basket_size": "average items per basket", "interpurchase_days": "days between purchases",
    "discount_share": "share of spend discounted", "coupon_share": "share of spend on coupons",
    "private_label_share": "share of store-brand items", "weekend_share": "share of weekend orders",
    "evening_share": "share of evening orders", "hour_mean": "average hour of purchase",
    "trend_90d": "order rate in the last 90 days vs lifetime", "n_views": "product views", "n_carts": "cart adds",
    "n_coupon_redemptions": "coupon redemptions",
}  # fmt: skip

# Trait phrases for the template, by (feature, direction): "+" = above the population, "-" = below.
PHRASES = {
    ("recency_days", "+"): "Lapsing", ("recency_days", "-"): "Recently active",
    ("frequency", "+"): "Frequent", ("frequency", "-"): "Occasional",
    ("monetary", "+"): "High-spend", ("monetary", "-"): "Low-spend",
    ("tenure_days", "+"): "Long-standing", ("tenure_days", "-"): "Newer",
    ("avg_basket_value", "+"): "Big-basket", ("avg_basket_value", "-"): "Small-basket",
    ("avg_basket_size", "+"): "Many-item", ("avg_basket_size", "-"): "Few-item",
    ("interpurchase_days", "+"): "Widely spaced", ("interpurchase_days", "-"): "Closely spaced",
    ("discount_share", "+"): "Discount-driven", ("discount_share", "-"): "Full-price",
    ("coupon_share", "+"): "Coupon-using", ("coupon_share", "-"): "Coupon-averse",
    ("private_label_share", "+"): "Store-brand", ("private_label_share", "-"): "National-brand",
    ("weekend_share", "+"): "Weekend", ("weekend_share", "-"): "Weekday",
    ("evening_share", "+"): "Evening", ("evening_share", "-"): "Daytime",
    ("hour_mean", "+"): "Later-in-day", ("hour_mean", "-"): "Earlier-in-day",
    ("trend_90d", "+"): "Growing", ("trend_90d", "-"): "Declining",
    ("n_views", "+"): "Browsing", ("n_views", "-"): "Low-browsing",
    ("n_carts", "+"): "Cart-filling", ("n_carts", "-"): "Few-cart",
    ("n_coupon_redemptions", "+"): "Coupon-redeeming", ("n_coupon_redemptions", "-"): "Few-coupon",
}  # fmt: skip

# Words that claim a trait: the claim is supported only if that trait is shown with that direction.
CLAIMS: dict[str, list[tuple[str, str]]] = {
    r"\bloyal|\bfrequent|\bregular|\boften\b": [("frequency", "+"), ("interpurchase_days", "-")],
    r"\boccasional|\binfrequent|\brarely\b": [("frequency", "-"), ("interpurchase_days", "+")],
    r"big spend|high[- ]spend|high[- ]value|\bpremium|\baffluent|\bbig[- ]basket|\bbig[- ]ticket": [
        ("monetary", "+"), ("avg_basket_value", "+")],
    r"low[- ]spend|\bbudget|small[- ]basket|\bfrugal": [("monetary", "-"), ("avg_basket_value", "-")],
    r"\blaps|\binactive|\bdormant|\bchurn|\bsleep|\bdrifting": [("recency_days", "+")],
    r"recently active|\bengaged\b": [("recency_days", "-")],
    r"\bbargain|\bdeal|\bdiscount|price[- ]sensitive|\bthrift|\bsavvy|\bsaver": [
        ("discount_share", "+"), ("coupon_share", "+")],
    r"\bcoupon": [("coupon_share", "+"), ("coupon_share", "-"), ("n_coupon_redemptions", "+"),
                   ("n_coupon_redemptions", "-")],
    # Timing words may be qualified either way ("less at weekends"): the trait must be shown, in any direction.
    r"\bweekend|\bweekday": [("weekend_share", "+"), ("weekend_share", "-")],
    r"\bevening|\bnight|\blate[- ]|\bmorning|\bearly[- ]|\bdaytime": [
        ("evening_share", "+"), ("evening_share", "-"), ("hour_mean", "+"), ("hour_mean", "-")],
    r"new customer|\bnewcomer|\bnewer\b|recently joined": [("tenure_days", "-")],
    r"store[- ]brand|private[- ]label|own[- ]brand": [("private_label_share", "+")],
    r"\bgrowing|\bincreasing|\brising": [("trend_90d", "+")],
    r"\bdeclining|\bdecreasing|\bfalling": [("trend_90d", "-")],
}  # fmt: skip
# Claims no statistic here can support: the stats have no demographics or motives.
DEMOGRAPHIC = re.compile(
    r"\b(famil|kid|child|parent|mother|father|mom|dad|young|old|senior|student|retire|wealth|"
    r"rich|poor|income|age[ds]?\b|millennial|gen z|boomer|couple|single|married|healthy|"
    r"health-conscious|busy|professional|urban|rural)",
    re.I,
)
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


class PersonaText(BaseModel):
    name: str = Field(min_length=2, max_length=60, description="2 to 4 word persona name")
    description: str = Field(min_length=10, max_length=400, description="one or two sentences")


class Trait(BaseModel):
    feature: str
    label: str
    cluster_mean: float
    population_mean: float
    z: float  # cluster mean minus population mean, in population standard deviations (standardized space)


class Share(BaseModel):
    name: str
    share: float  # of the cluster's purchased lines
    lift: float  # share in the cluster / share in the population


class PersonaStats(BaseModel):
    cluster: int
    size: int
    share: float
    traits: list[Trait]
    top_departments: list[Share]
    top_categories: list[Share]


class Persona(BaseModel):
    cluster: int
    name: str
    description: str
    source: str  # "llm" or "template"
    note: str | None = None  # why the template was used
    stats: PersonaStats


# -- stats --------------------------------------------------------------------------------------------------
def cluster_stats(
    features: pd.DataFrame,
    standardized: np.ndarray,
    feature_names: list[str],
    labels: np.ndarray,
    purchases: pd.DataFrame,
    *,
    n_traits: int = 5,
    n_top: int = 3,
) -> list[PersonaStats]:
    """One PersonaStats per cluster.

    features: customer_features rows (raw values); standardized: (n, len(feature_names)) the clustering's
    numeric block for the same rows; purchases: customer_id, department, category, n (lines) for those customers.
    """
    customer_cluster = dict(zip(features["customer_id"], labels, strict=True))
    bought = purchases.assign(cluster=purchases["customer_id"].map(customer_cluster)).dropna(subset=["cluster"])
    stats = []
    for c in sorted(set(int(x) for x in labels)):
        rows = labels == c
        z = standardized[rows].mean(axis=0)
        order = np.argsort(-np.abs(z))[:n_traits]
        traits = [
            Trait(
                feature=feature_names[j],
                label=label(feature_names[j]),
                cluster_mean=_round(features.loc[rows, feature_names[j]].mean()),
                population_mean=_round(features[feature_names[j]].mean()),
                z=round(float(z[j]), 2),
            )
            for j in order
        ]
        mine = bought[bought["cluster"] == c]
        stats.append(
            PersonaStats(
                cluster=c,
                size=int(rows.sum()),
                share=round(float(rows.mean()), 3),
                traits=traits,
                top_departments=_top_shares(mine, bought, "department", n_top),
                top_categories=_top_shares(mine, bought, "category", n_top),
            )
        )
    return stats


def label(feature: str) -> str:
    """Readable name of a feature: LABELS, or "share of spend in DRUG GM" for dept_drug_gm."""
    if feature.startswith("dept_"):
        return "share of spend in " + feature.removeprefix("dept_").replace("_", " ").upper()
    return LABELS.get(feature, feature)


def _top_shares(
    mine: pd.DataFrame, everyone: pd.DataFrame, column: str, n: int, min_share: float = 0.02
) -> list[Share]:
    """The cluster's most over-represented values (highest lift) among those with at least ``min_share``."""
    if mine.empty:
        return []
    share = mine.groupby(column)["n"].sum() / mine["n"].sum()
    base = everyone.groupby(column)["n"].sum() / everyone["n"].sum()
    lift = (share / base[share.index]).where(share >= min_share)
    top = share[lift.dropna().sort_values(ascending=False).index].head(n)
    return [Share(name=str(k), share=round(float(v), 3), lift=round(float(v / base[k]), 2)) for k, v in top.items()]


def _round(value: float) -> float:
    value = float(value) if pd.notna(value) else 0.0
    return round(value, 2) if abs(value) < 100 else round(value)


# -- the guard ------------------------------------------------------------------------------------------------
def unsupported_claims(text: PersonaText, stats: PersonaStats, vocabulary: set[str]) -> list[str]:
    """What the text claims that the stats do not show (empty when it is supported).

    vocabulary: every department and category name in the shop (upper or mixed case)."""
    body = f"{text.name}. {text.description}"
    problems = []
    claims = body
    for t in stats.traits:  # naming a listed trait (e.g. "share of weekend orders 0.3 vs 0.2") claims nothing
        claims = re.sub(re.escape(t.label), " ", claims, flags=re.I)
    allowed_numbers = _numbers_in(stats)
    for number in NUMBER.findall(claims):
        if _normal(number) not in allowed_numbers:
            problems.append(f"number {number} is not in the stats")
    listed = {_plain(s.name) for s in stats.top_departments + stats.top_categories}
    listed |= {
        _plain(t.label.removeprefix("share of spend in ")) for t in stats.traits if t.feature.startswith("dept_")
    }
    plain_body = f" {_plain(body)} "
    # Words of the shown traits' labels and phrases (e.g. "coupon") are trait words even where a department
    # has the same name.
    trait_words = " ".join(
        [t.label for t in stats.traits] + [PHRASES.get((t.feature, "+" if t.z > 0 else "-"), "") for t in stats.traits]
    )
    trait_words = f" {_plain(trait_words)} "
    for term in sorted(vocabulary):
        t = _plain(term)
        if (
            len(t) >= 4
            and f" {t} " in plain_body
            and f" {t} " not in trait_words
            and not any(t in name for name in listed)
        ):
            problems.append(f"names {term!r}, which is not among the cluster's top departments/categories")
    shown = {(t.feature, "+" if t.z > 0 else "-") for t in stats.traits if abs(t.z) >= 0.2}
    grounded = claims != body  # names a listed trait
    for pattern, needs in CLAIMS.items():
        match = re.search(pattern, claims, re.I)
        if match and not shown.intersection(needs):
            problems.append(f"claims {match.group(0)!r} but the stats show no such trait")
        grounded = grounded or bool(match)
    grounded = grounded or any(PHRASES.get(key, "\0").lower() in body.lower() for key in shown)
    if not grounded:
        problems.append("says nothing about the traits the stats show")
    if not 2 <= len(text.name.split()) <= 6:
        problems.append(f"name {text.name!r} is not a 2-6 word persona name")
    words = _plain(body).split()
    grams = Counter(tuple(words[i : i + 8]) for i in range(len(words) - 7))
    if grams and grams.most_common(1)[0][1] >= 3:
        problems.append("repeats itself")
    demographic = DEMOGRAPHIC.search(body)
    if demographic:
        problems.append(f"claims {demographic.group(0)!r}; the stats hold no demographics or motives")
    return problems


def _plain(text: str) -> str:
    """Lower case, runs of non-alphanumerics as one space ("MEAT-PCKGD" and "meat pckgd" compare equal)."""
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()


def _numbers_in(stats: PersonaStats) -> set[str]:
    values = [stats.size, stats.cluster, stats.share, stats.share * 100, len(stats.traits)]
    for t in stats.traits:
        values += [t.cluster_mean, t.population_mean, t.z, abs(t.z)]
        if t.population_mean:
            values.append(t.cluster_mean / t.population_mean)
    for s in stats.top_departments + stats.top_categories:
        values += [s.share, s.share * 100, s.lift]
    allowed = set()
    for v in values:
        for digits in (0, 1, 2):
            allowed.add(_normal(f"{abs(v):.{digits}f}"))
    return allowed


def _normal(number: str) -> str:
    number = number.replace(",", "")
    return number.rstrip("0").rstrip(".") if "." in number else number


# -- writing ----------------------------------------------------------------------------------------------------
def template_text(stats: PersonaStats) -> PersonaText:
    """A name and description built only from the stats (always passes the guard)."""
    phrases = [PHRASES.get((t.feature, "+" if t.z > 0 else "-"), t.label) for t in stats.traits[:2]]
    name = f"{phrases[0]}, {phrases[1].lower()} shoppers" if len(phrases) == 2 else f"{phrases[0]} shoppers"
    parts = [f"{t.label} {t.cluster_mean:g} vs {t.population_mean:g} overall ({t.z:+.1f} sd)" for t in stats.traits[:3]]
    description = f"{stats.share * 100:.1f}% of customers ({stats.size}). " + "; ".join(parts) + "."
    above = [s for s in stats.top_departments[:2] if s.lift > 1]
    if above:
        description += " Buys more than average in " + ", ".join(f"{s.name} (x{s.lift:g})" for s in above) + "."
    return PersonaText(name=name[:60], description=description[:400])


def prompt() -> str:
    return resources.files("segmentation").joinpath("prompts/persona.md").read_text()


def write_persona(llm, stats: PersonaStats, vocabulary: set[str]) -> Persona:
    """The LLM's name and description if it is reachable and its text passes the guard, else the template."""
    messages = [
        {"role": "system", "content": prompt()},
        {"role": "user", "content": json.dumps(stats.model_dump(exclude={"cluster"}))},
    ]
    note = None
    if llm is not None:
        try:
            text = llm.structured(messages, PersonaText, max_tokens=200)
        except LLMError as exc:
            note = f"LLM unavailable: {exc}"
        else:
            problems = unsupported_claims(text, stats, vocabulary)
            if not problems:
                return Persona(
                    cluster=stats.cluster, name=text.name, description=text.description, source="llm", stats=stats
                )
            note = "LLM text rejected: " + "; ".join(problems[:3])
    text = template_text(stats)
    return Persona(
        cluster=stats.cluster, name=text.name, description=text.description, source="template", note=note, stats=stats
    )


def write_personas(llm, stats: list[PersonaStats], vocabulary: set[str]) -> list[Persona]:
    """One persona per cluster; after the first LLMError the rest go straight to the template."""
    personas = []
    for s in stats:
        persona = write_persona(llm, s, vocabulary)
        if persona.note and persona.note.startswith("LLM unavailable"):
            llm = None
        personas.append(persona)
    return personas
