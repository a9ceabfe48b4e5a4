"""Live profiles over a real fit of the demo store: one customer's update leaves everyone else alone, new
customers get a cluster and a segment, events survive a reload, the segment mix drift alarm, threads."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from assistant.errors import StoreError
from assistant.settings import Settings
from segmentation.profiles import ProfileEvent, ProfileStore
from tests.segmentation_fit import copy_of_fit, fitted_data_dir


@pytest.fixture
def settings(demo_store, tmp_path_factory, tmp_path) -> Settings:
    return copy_of_fit(demo_store, tmp_path_factory.getbasetemp(), tmp_path)


@pytest.fixture
def store(settings) -> ProfileStore:
    return ProfileStore.load(settings)


def an_existing_customer(store: ProfileStore, segment: str) -> str:
    return next(cid for cid in sorted(store._profiles) if store.get(cid).segment == segment)


def test_fitted_profile_has_every_part(store):
    profile = store.get("2261")
    assert profile.segment and 1 <= profile.r <= 5 and 1 <= profile.f <= 5 and 1 <= profile.m <= 5
    assert profile.cluster is not None and profile.persona
    assert profile.p_alive is not None and profile.alive_band in {"likely active", "uncertain", "likely lapsed"}
    assert 0 <= profile.propensity <= 1 and profile.propensity_model == "gbm"
    assert profile.top_categories and profile.price_band in {"budget", "mid", "premium"}
    assert profile.features["frequency"] >= 1 and profile.private_label_share is not None
    assert len(store) == 2377


def test_an_order_updates_that_customer_only(store):
    cid = an_existing_customer(store, "Lost")
    other = next(c for c in sorted(store._profiles) if c != cid)
    before, other_before = store.get(cid), store.get(other)
    as_of = before.as_of
    result = store.record(ProfileEvent(customer_id=cid, ts=as_of + timedelta(hours=10), type="order",
                                       amount=80.0, lines=6, discount=4.0, coupon_lines=1))
    after = result.profile
    assert after.features["frequency"] == before.features["frequency"] + 1
    assert after.features["monetary"] == pytest.approx(before.features["monetary"] + 80.0, abs=0.01)
    assert after.features["recency_days"] == 1  # bought the day before the profile's new as-of date
    assert after.r == 5 and result.segment_before == "Lost" and after.segment != "Lost"
    assert after.updated == "live" and 0 <= after.propensity <= 1
    assert store.get(other) is other_before  # untouched: the very same object
    assert not result.drift.drifted and result.drift.tvd < 0.01


def test_a_new_customer_gets_a_segment_and_a_cluster(store):
    k = store.model.k
    result = store.record(ProfileEvent(customer_id="web-000001", ts=datetime(2018, 1, 3, 12), type="order",
                                       amount=12.5, lines=3))
    profile = result.profile
    assert result.new_customer and profile.segment == "New" and (profile.r, profile.f) == (5, 1)
    assert 0 <= profile.cluster < k and profile.persona
    assert profile.features["tenure_days"] == 1 and profile.features["interpurchase_days"] is None


def test_browsing_events_count_and_let_time_pass(store):
    cid = "2261"
    before = store.get(cid)
    same_day = store.record(ProfileEvent(customer_id=cid, ts=before.as_of - timedelta(hours=2), type="view"))
    after = same_day.profile
    assert after.features["n_views"] == (before.features["n_views"] or 0) + 1
    assert (after.r, after.f, after.m, after.segment) == (before.r, before.f, before.m, before.segment)
    # A visit 40 days later moves this customer's clock: recency grows, the order counts stay.
    later = store.record(ProfileEvent(customer_id=cid, ts=before.as_of + timedelta(days=40), type="cart")).profile
    assert later.features["recency_days"] == before.features["recency_days"] + 41
    assert later.features["frequency"] == before.features["frequency"] and later.r < before.r


def test_events_survive_a_reload(settings, store):
    store.record(ProfileEvent(customer_id="web-000002", ts=datetime(2018, 1, 4), type="order", amount=30, lines=2))
    store.record(ProfileEvent(customer_id="2261", ts=datetime(2018, 1, 4), type="order", amount=5, lines=1))
    again = ProfileStore.load(settings)
    assert again.get("web-000002").features["monetary"] == 30
    assert again.get("2261").features["frequency"] == store.get("2261").features["frequency"]


def test_drift_triggers_on_a_shifted_segment_mix(store):
    """Test construction: 600 synthetic brand-new customers (labelled as such) arrive at once, so the "New"
    segment's share jumps from under 1% to about 20%."""
    assert not store.drift().drifted
    results = [store.record(ProfileEvent(customer_id=f"synthetic-{i}", ts=datetime(2018, 1, 5), type="order",
                                         amount=10, lines=1)) for i in range(600)]
    drift = results[-1].drift
    assert drift.drifted and drift.tvd > store.drift_threshold and drift.psi > 0.1
    assert drift.current_shares["New"] > 0.15 > drift.fit_shares["New"]
    assert not results[0].drift.drifted  # one new customer is not drift


def test_concurrent_updates_and_reads(store):
    cid = "2261"
    start = store.get(cid).features["frequency"]
    errors = []

    def buy(n: int) -> None:
        try:
            for i in range(n):
                store.record(ProfileEvent(customer_id=cid, ts=datetime(2018, 1, 6, 9, i), type="order",
                                          amount=1.0, lines=1))
                store.get(cid)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=buy, args=(20,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and store.get(cid).features["frequency"] == start + 120


def test_bad_input_is_refused(store, tmp_path):
    with pytest.raises(StoreError, match="No profile for customer"):
        store.get("nobody")
    with pytest.raises(ValidationError):
        ProfileEvent(customer_id="2261", ts=datetime(2018, 1, 1), type="order", lines=-1)
    with pytest.raises(ValidationError):
        ProfileEvent(customer_id="", ts=datetime(2018, 1, 1), type="order")
    with pytest.raises(StoreError, match="kefu segment fit"):
        ProfileStore.load(Settings(data_dir=tmp_path / "empty"))


def test_the_shared_fit_is_untouched(demo_store, tmp_path_factory):
    data_dir, _ = fitted_data_dir(demo_store, tmp_path_factory.getbasetemp())
    assert not (data_dir / "segments" / "profile_events.jsonl").exists()
