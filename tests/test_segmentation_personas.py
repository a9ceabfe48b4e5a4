"""Persona cards: stats from a real fit on the demo store, the no-unsupported-claims guard, the template fallback
(LLM down, LLM text rejected) and one request to the real vLLM server."""

from __future__ import annotations

import json

import pytest

from kefu.llm.client import LLM
from segmentation.personas import (
    Persona,
    PersonaStats,
    PersonaText,
    Share,
    Trait,
    template_text,
    unsupported_claims,
    write_persona,
    write_personas,
)
from tests.segmentation_fit import fitted_data_dir

VOCABULARY = {
    "COUPON",
    "GROCERY",
    "DRUG GM",
    "PRODUCE",
    "MEAT-PCKGD",
    "FUEL",
    "BAKED BREAD/BUNS/ROLLS",
    "SOFT DRINKS",
    "BEERS/ALES",
    "FLUID MILK PRODUCTS",
    "CANDY - CHECKLANE",
}


def stats(**overrides) -> PersonaStats:
    """A hand-written card: frequent, high spenders who shop less on weekends, buying grocery and soft drinks."""
    values = {
        "cluster": 1,
        "size": 412,
        "share": 0.173,
        "traits": [
            Trait(feature="frequency", label="orders", cluster_mean=41.2, population_mean=19.6, z=1.35),
            Trait(feature="monetary", label="total spend", cluster_mean=210.0, population_mean=100.0, z=1.1),
            Trait(
                feature="weekend_share",
                label="share of weekend orders",
                cluster_mean=0.18,
                population_mean=0.29,
                z=-0.6,
            ),
        ],
        "top_departments": [Share(name="GROCERY", share=0.52, lift=1.1)],
        "top_categories": [Share(name="SOFT DRINKS", share=0.06, lift=1.8)],
    }
    return PersonaStats(**{**values, **overrides})


def text(name: str, description: str) -> PersonaText:
    return PersonaText(name=name, description=description)


@pytest.fixture(scope="module")
def fitted_personas(demo_store, tmp_path_factory) -> list[Persona]:
    data_dir, _ = fitted_data_dir(demo_store, tmp_path_factory.getbasetemp())
    return [Persona.model_validate(p) for p in json.loads((data_dir / "segments" / "personas.json").read_text())]


def test_fitted_cards_hold_stats_that_set_clusters_apart(fitted_personas):
    assert len(fitted_personas) >= 2
    assert sum(p.stats.size for p in fitted_personas) == 30  # the shared fit clusters 30 customers
    for persona in fitted_personas:
        z = [abs(t.z) for t in persona.stats.traits]
        assert z == sorted(z, reverse=True) and z[0] > 0.3  # strongest differences first, and real ones
        assert persona.stats.top_departments and all(0 < s.share <= 1 for s in persona.stats.top_departments)
        assert persona.source == "template" and persona.name


def test_template_text_passes_the_guard_on_real_cards(fitted_personas, demo_store):
    import duckdb

    con = duckdb.connect(str(demo_store), read_only=True)
    vocabulary = {
        v
        for (v,) in con.execute(
            "SELECT DISTINCT department FROM products WHERE department IS NOT NULL "
            "UNION SELECT DISTINCT category FROM products WHERE category IS NOT NULL"
        ).fetchall()
    }
    con.close()
    for persona in fitted_personas:
        assert unsupported_claims(template_text(persona.stats), persona.stats, vocabulary) == []


def test_guard_accepts_a_faithful_text():
    faithful = text(
        "Frequent big spenders",
        "They place 41.2 orders against 19.6 overall and spend about twice "
        "as much; they buy GROCERY and SOFT DRINKS, and shop less at weekends.",
    )
    assert unsupported_claims(faithful, stats(), VOCABULARY) == []


@pytest.mark.parametrize(
    ("name", "description", "problem"),
    [
        ("Frequent shoppers", "They place 55 orders a year.", "number 55"),
        ("Frequent shoppers", "They love BEERS/ALES and buy them often.", "BEERS/ALES"),
        ("Lapsed bargain hunters", "They have not come back for a while.", "claims 'laps"),
        ("Evening shoppers", "They shop mostly in the evening.", "evening"),
        ("Busy young families", "Frequent shoppers with kids.", "demographics"),
        ("Occasional buyers", "They rarely shop here.", "claims 'Occasional'"),
        # Seen from SmolLM2-135M: says nothing about the customers, loops, and the name is one token.
        (
            "MEAT-PCKGD",
            "A product that is made with a lot of meat, which is made with a lot of meat, which is made "
            "with a lot of meat.",
            "says nothing",
        ),
        ("MEAT-PCKGD", "Frequent shoppers.", "2-6 word"),
        (
            "Frequent spenders",
            "Frequent orders, made with a lot of care, made with a lot of care, made with a lot of "
            "care, made with a lot of care.",
            "repeats itself",
        ),
    ],
)
def test_guard_rejects_claims_the_stats_do_not_show(name, description, problem):
    problems = unsupported_claims(text(name, description), stats(), VOCABULARY)
    assert any(problem.lower() in p.lower() for p in problems), problems


def test_reversed_trait_is_rejected():
    lapsing = stats(
        traits=[
            Trait(feature="recency_days", label="days since last purchase", cluster_mean=90, population_mean=48, z=0.9)
        ]
    )
    assert unsupported_claims(text("Lapsing customers", "Not seen for 90 days."), lapsing, VOCABULARY) == []
    assert unsupported_claims(text("Recently active", "Engaged customers."), lapsing, VOCABULARY)


class ScriptedLLM:
    """Stands in for the server to test the rejection path: returns a fixed text."""

    def __init__(self, reply: PersonaText) -> None:
        self.reply = reply
        self.calls = []

    def structured(self, messages, schema, **kwargs):
        self.calls.append(messages)
        return self.reply


def test_rejected_llm_text_falls_back_to_the_template():
    llm = ScriptedLLM(text("Young affluent families", "They earn a lot."))
    persona = write_persona(llm, stats(), VOCABULARY)
    assert persona.source == "template" and "rejected" in persona.note
    assert persona.name == template_text(stats()).name
    # The model was given only the stats (and the instructions).
    system, user = llm.calls[0]
    assert "Use ONLY the statistics" in system["content"]
    assert json.loads(user["content"]) == stats().model_dump(exclude={"cluster"})


def test_accepted_llm_text_is_used():
    llm = ScriptedLLM(text("Frequent big spenders", "Many orders and high spend."))
    persona = write_persona(llm, stats(), VOCABULARY)
    assert (persona.source, persona.name, persona.note) == ("llm", "Frequent big spenders", None)


def test_unreachable_llm_gives_template_personas():
    llm = LLM("http://127.0.0.1:9/v1", "nothing", timeout_s=2, retries=0)
    personas = write_personas(llm, [stats(), stats(cluster=2)], VOCABULARY)
    assert [p.source for p in personas] == ["template", "template"]
    assert "LLM unavailable" in personas[0].note and "Cannot reach" in personas[0].note


@pytest.mark.llm
def test_real_llm_persona_is_structured_and_guarded(llm_settings, fitted_personas):
    llm = LLM.from_settings(llm_settings)
    card = fitted_personas[0].stats
    raw = llm.structured([{"role": "user", "content": json.dumps(card.model_dump())}], PersonaText, max_tokens=200)
    assert isinstance(raw, PersonaText) and raw.name
    persona = write_persona(llm, card, VOCABULARY | {s.name for s in card.top_categories})
    if persona.source == "llm":
        assert (
            unsupported_claims(PersonaText(name=persona.name, description=persona.description), card, VOCABULARY) == []
        )
    else:  # the small model's text made a claim the stats do not show: the guard caught it
        assert persona.note.startswith("LLM text rejected")


def test_renaming_personas_after_a_fit_updates_the_profiles(demo_store, tmp_path_factory, tmp_path):
    from segmentation.pipeline import rename_personas
    from segmentation.profiles import ProfileStore
    from tests.segmentation_fit import copy_of_fit

    settings = copy_of_fit(demo_store, tmp_path_factory.getbasetemp(), tmp_path)
    settings = settings.model_copy(update={"llm_url": "http://127.0.0.1:9/v1", "llm_retries": 0})
    llm = ScriptedLLM(text("Frequent big spenders", "Many orders and high spend."))
    cards = rename_personas(settings, llm)  # the scripted text passes only where the stats show those traits
    assert len(llm.calls) == len(cards)
    profile = ProfileStore.load(settings).get("2261")
    assert profile.persona == next(c.name for c in cards if c.cluster == profile.cluster)
    for card in cards:
        shown = {(t.feature, t.z > 0) for t in card.stats.traits if abs(t.z) >= 0.2}
        supported = bool(shown & {("frequency", True), ("interpurchase_days", False)}) and bool(
            shown & {("monetary", True), ("avg_basket_value", True)}
        )
        assert card.source == ("llm" if supported else "template")


@pytest.mark.parametrize("z", [1.0, -1.0])
def test_template_passes_the_guard_for_every_trait_and_direction(z):
    from segmentation.clusters import NUMERIC_FEATURES
    from segmentation.personas import label

    for feature in NUMERIC_FEATURES:
        card = stats(
            traits=[
                Trait(feature=feature, label=label(feature), cluster_mean=1.5, population_mean=1.0, z=z),
                Trait(feature="frequency", label="orders", cluster_mean=30, population_mean=20, z=0.5),
            ]
        )
        assert unsupported_claims(template_text(card), card, VOCABULARY) == [], feature
