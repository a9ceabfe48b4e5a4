"""The intent map and the labelled data: every source label placed exactly once, splits that do not leak."""

import json

import pytest

from assistant.understanding import intent_data
from assistant.understanding.schema import INTENTS, SHOPPING
from kefu.errors import IntentError


@pytest.fixture(scope="module")
def mapping():
    return intent_data.load_intent_map()


@pytest.fixture(scope="module")
def frames(mapping):
    return intent_data.load_bitext(mapping), intent_data.load_clinc(mapping)


def test_every_source_label_maps_to_exactly_one_intent(mapping, frames):
    bitext, clinc = frames
    assert set(mapping.bitext) == set(bitext["source_label"])  # no stale entries, nothing missing
    assert len(mapping.bitext) == 27
    domains = json.loads(intent_data.clinc_domains_path().read_text())
    clinc_labels = set(clinc["source_label"])
    assert clinc_labels == {label for labels in domains.values() for label in labels} | {"oos"}
    assert set(mapping.clinc_intents) <= clinc_labels  # overrides name real labels
    flat = mapping.flat()
    for label in clinc_labels | set(mapping.bitext):
        assert flat[label] in set(INTENTS)
    assert not bitext["intent"].isna().any() and not clinc["intent"].isna().any()


def test_map_decisions(mapping):
    flat = mapping.flat()
    assert flat["track_order"] == flat["order_status"] == "order_status"
    assert {flat[x] for x in ["get_refund", "track_refund", "check_refund_policy"]} == {"return_refund"}
    assert flat["contact_human_agent"] == "human_handoff"
    assert flat["oos"] == flat["weather"] == flat["book_flight"] == "out_of_scope"
    assert flat["greeting"] == flat["thank_you"] == flat["goodbye"] == "chitchat"
    assert flat["change_volume"] == "out_of_scope"  # a voice-assistant setting, not a shop conversation
    # No real shop searches in any source: ordering, shopping lists and food facts reach shopping intents.
    assert {flat[x] for x in flat if flat[x] in SHOPPING} == {"product_search", "product_question"}
    assert flat["shopping_list_update"] == "product_search" and flat["calories"] == "product_question"
    assert flat["recipe"] == flat["restaurant_reservation"] == "out_of_scope"


def test_new_unmapped_label_fails_loudly(mapping, tmp_path):
    csv = tmp_path / "bitext.csv"
    csv.write_text(
        "flags,utterance,category,intent\nB,where is my parcel,ORDER,track_order\n"
        "B,i want a gift card,GIFT,buy_gift_card\n"
    )
    with pytest.raises(IntentError, match="buy_gift_card"):
        intent_data.load_bitext(mapping, csv)


def test_map_with_a_wrong_target_or_missing_domain_is_rejected(tmp_path):
    bad = tmp_path / "map.toml"
    bad.write_text('[bitext]\ntrack_order = "shipping"\n[clinc.domains]\n')
    with pytest.raises(IntentError, match="shipping"):
        intent_data.load_intent_map(bad)
    bad.write_text('[bitext]\ntrack_order = "order_status"\n[clinc.domains]\nbanking = "out_of_scope"\n')
    with pytest.raises(IntentError, match="CLINC domains without an intent"):
        intent_data.load_intent_map(bad)
    bad.write_text("[bitext\n")
    with pytest.raises(IntentError, match="Cannot read"):
        intent_data.load_intent_map(bad)


@pytest.mark.parametrize("holdout", ["utterance", "register"])
def test_held_out_splits_share_no_normalized_text_with_training(frames, holdout):
    pool, tests = intent_data.split(*frames, holdout=holdout)
    assert set(tests) == {f"bitext_{holdout}", "clinc_val"}
    for test in tests.values():
        assert len(test) > 1000
        assert not set(test["group"]) & set(pool["group"])
    bitext_test = tests[f"bitext_{holdout}"]
    assert set(bitext_test["source_label"]) == set(frames[0]["source_label"])  # every Bitext intent is tested
    if holdout == "register":
        assert bitext_test["flags"].str.contains("[QZW]").all()
        assert not pool.loc[pool["source"] == "bitext", "flags"].str.contains("[QZW]").any()
    assert set(tests["clinc_val"]["split"]) == {"val", "oos_val"}


def test_sample_per_label_is_capped_and_spread_over_source_labels(frames):
    pool, _ = intent_data.split(*frames)
    rows = intent_data.sample_per_label(pool, 40, seed=1)
    counts = rows["intent"].value_counts()
    assert counts.max() == 40 and set(counts.index) == set(pool["intent"])
    payment = rows[rows["intent"] == "payment"]["source_label"].value_counts()
    assert len(payment) == 5 and payment.max() - payment.min() <= 1  # 4 Bitext labels + CLINC card_declined
    wider = intent_data.sample_per_label(pool, 40, seed=1, caps={"out_of_scope": 90})["intent"].value_counts()
    assert wider["out_of_scope"] == 90 and wider.drop("out_of_scope").max() == 40
    assert intent_data.rows_sha256(rows) == intent_data.rows_sha256(intent_data.sample_per_label(pool, 40, 1))
    assert intent_data.rows_sha256(rows) != intent_data.rows_sha256(intent_data.sample_per_label(pool, 40, 2))


def test_normalize_groups_near_duplicates():
    assert intent_data.normalize("Where's my ORDER??  ") == intent_data.normalize("wheres my order")
    assert intent_data.normalize("I cant, pay!") == "i cant pay"
