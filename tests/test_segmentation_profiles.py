"""Live profiles over a real fit of the demo store: one customer's update leaves everyone else alone, new
customers get a cluster and a segment, events survive a reload, the segment mix drift alarm, threads."""

from __future__ import annotations

import shutil
import threading
from datetime import datetime, timedelta

import duckdb
import pytest
from pydantic import ValidationError

from kefu.errors import StoreError
from kefu.settings import Settings
from segmentation.profiles import OrderLine, ProfileEvent, ProfileStore
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
    result = store.record(
        ProfileEvent(
            customer_id=cid,
            ts=as_of + timedelta(hours=10),
            type="order",
            amount=80.0,
            lines=6,
            discount=4.0,
            coupon_lines=1,
        )
    )
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
    result = store.record(
        ProfileEvent(customer_id="web-000001", ts=datetime(2018, 1, 3, 12), type="order", amount=12.5, lines=3)
    )
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
    results = [
        store.record(
            ProfileEvent(customer_id=f"synthetic-{i}", ts=datetime(2018, 1, 5), type="order", amount=10, lines=1)
        )
        for i in range(600)
    ]
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
                store.record(
                    ProfileEvent(customer_id=cid, ts=datetime(2018, 1, 6, 9, i), type="order", amount=1.0, lines=1)
                )
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


def _lines_for(store_path, customer_id: str) -> list[OrderLine]:
    """Real products for a test order: a store-brand one in a department with a share column, one from a
    category the customer never bought, a product the catalogue does not know, and a returned line."""
    with duckdb.connect(str(store_path), read_only=True) as con:
        private = con.execute(
            "SELECT product_id FROM products WHERE brand = 'Private' AND department = 'GROCERY' "
            "ORDER BY product_id LIMIT 1"
        ).fetchall()[0][0]
        novel = con.execute(
            """
            SELECT product_id FROM products
            WHERE category IS NOT NULL AND department IN ('GROCERY', 'DRUG GM', 'PRODUCE') AND category NOT IN (
                SELECT p.category FROM orders o JOIN order_items i USING (order_id) JOIN products p USING (product_id)
                WHERE o.customer_id = $c AND p.category IS NOT NULL)
            ORDER BY product_id LIMIT 1""",
            {"c": customer_id},
        ).fetchall()[0][0]
    return [
        OrderLine(product_id=private, amount=40.0, discount=4.0),
        OrderLine(product_id=novel, amount=900.0, discount=1.5, coupon=True),
        OrderLine(product_id="no-such-product", amount=3.0),
        OrderLine(product_id=private, amount=-2.0),
    ]


def _refit_with_order(settings, tmp_path, cid: str, ts: datetime, items: list[OrderLine]):
    """The same order written into a copy of the store, features and the CLV summary recomputed from scratch."""
    from segmentation.clv import calibration_summary
    from segmentation.features import build_features

    path = tmp_path / "refit.duckdb"
    shutil.copy(settings.store_path, path)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO orders VALUES ('live-1', $c, $ts, 'completed', NULL)", {"c": cid, "ts": ts})
    for n, item in enumerate(items, start=1):
        con.execute(
            "INSERT INTO order_items VALUES ('live-1', $n, $p, 1, $a, $d, $cd, 0, $r)",
            {
                "n": n,
                "p": item.product_id,
                "a": item.amount,
                "d": 0.0 if item.coupon else item.discount,
                "cd": item.discount if item.coupon else 0.0,
                "r": item.amount < 0,
            },
        )
    as_of = datetime.combine(ts.date() + timedelta(days=1), datetime.min.time())
    build_features(con, as_of)
    features = con.execute("SELECT * FROM customer_features WHERE customer_id = $c", {"c": cid}).df()
    con.execute(
        "CREATE TEMP VIEW transactions AS SELECT o.customer_id, o.ordered_at AS ts, i.amount "
        "FROM orders o JOIN order_items i USING (order_id) WHERE o.status <> 'cancelled'"
    )
    summary, _ = calibration_summary(con, ts.date())
    top = con.execute(
        """
        SELECT p.category FROM orders o JOIN order_items i USING (order_id) JOIN products p USING (product_id)
        WHERE o.customer_id = $c AND NOT i.is_return AND i.amount >= 0 AND p.category IS NOT NULL
        GROUP BY 1 ORDER BY sum(i.amount) DESC, 1 LIMIT 3""",
        {"c": cid},
    ).fetchall()
    con.close()
    return features.iloc[0].to_dict(), summary.loc[cid], [t[0] for t in top]


def test_an_order_with_lines_lands_where_a_refit_does(settings, store, tmp_path):
    """Live update vs the feature SQL and the CLV summary re-run on a store that holds the same order."""
    from segmentation import clv

    cid = "2261"
    before = store.get(cid)
    ts = datetime.combine(before.as_of.date(), datetime.min.time()) + timedelta(days=3, hours=18, minutes=30)
    items = _lines_for(settings.store_path, cid)
    result = store.record(ProfileEvent(customer_id=cid, ts=ts, type="order", items=items))
    live = result.profile
    assert result.unknown_products == ["no-such-product"]
    refit, summary, top = _refit_with_order(settings, tmp_path, cid, ts, items)

    compared = [
        "recency_days",
        "frequency",
        "monetary",
        "tenure_days",
        "avg_basket_value",
        "avg_basket_size",
        "interpurchase_days",
        "discount_share",
        "coupon_share",
        "private_label_share",
        "weekend_share",
        "evening_share",
        "hour_mean",
        *[c for c in refit if c.startswith("dept_")],
    ]
    for name in compared:
        assert live.features[name] == pytest.approx(refit[name], rel=1e-9, abs=1e-9), name
    assert (live.features["top_department"], live.features["top_category"]) == (
        refit["top_department"],
        refit["top_category"],
    )
    assert live.top_categories == top and live.top_categories != before.top_categories  # the $900 line leads

    # CLV: the fitted parameters applied to the re-computed purchase days give the live values.
    params = store.meta["clv_params"]
    bgnbd = clv.BGNBD(**params["bgnbd"], log_likelihood=0, converged=True)
    x, tx, big_t = summary["frequency"], summary["recency"], summary["T"]
    assert live.p_alive == pytest.approx(float(clv.p_alive(bgnbd, [x], [tx], [big_t])[0]), rel=1e-9)
    assert live.clv_expected_purchases == pytest.approx(
        float(clv.expected_purchases(bgnbd, store.meta["clv_horizon_days"], [x], [tx], [big_t])[0]), rel=1e-9
    )
    assert live.p_alive > 0.5 and live.alive_band != "likely lapsed"
    # Time passing without a purchase lowers P(alive).
    later = store.record(ProfileEvent(customer_id=cid, ts=ts + timedelta(days=300), type="view")).profile
    assert later.p_alive < live.p_alive and later.top_categories == live.top_categories


def test_a_lapsed_customer_comes_back_alive(store):
    cid = next(
        c
        for c in sorted(store._profiles)
        if store.get(c).alive_band == "likely lapsed" and store.get(c).features["frequency"] > 3
    )
    before = store.get(cid)
    after = store.record(
        ProfileEvent(customer_id=cid, ts=before.as_of + timedelta(hours=9), type="order", amount=25.0, lines=3)
    ).profile
    assert after.p_alive > before.p_alive and after.alive_band != "likely lapsed"
    assert after.clv_expected_value > before.clv_expected_value


def test_order_items_and_totals_must_agree():
    line = OrderLine(product_id="1", amount=5.0)
    event = ProfileEvent(customer_id="2261", ts=datetime(2018, 1, 1), type="order", items=[line, line])
    assert (event.amount, event.lines) == (10.0, 2)
    # A logged event (items and the derived totals) validates again on replay.
    assert ProfileEvent.model_validate_json(event.model_dump_json()) == event
    with pytest.raises(ValidationError, match="disagrees with the items"):
        ProfileEvent(customer_id="2261", ts=datetime(2018, 1, 1), type="order", amount=3.0, items=[line])
    with pytest.raises(ValidationError, match="items belong to orders"):
        ProfileEvent(customer_id="2261", ts=datetime(2018, 1, 1), type="view", items=[line])


def test_a_fit_from_an_older_version_is_refused_and_refitted_by_make_demo(settings):
    import json

    from segmentation.pipeline import fit_is_current
    from segmentation.workspace import segments_dir

    assert fit_is_current(settings)
    path = segments_dir(settings) / "fit.json"
    meta = json.loads(path.read_text())
    del meta["format"]
    path.write_text(json.dumps(meta))
    assert not fit_is_current(settings)  # `kefu segment fit --if-stale` (make demo) fits again
    with pytest.raises(StoreError, match="older version of Kefu; run `kefu segment fit`"):
        ProfileStore.load(settings)


def test_order_lines_without_a_store_are_refused_and_nothing_changes(settings):
    store = ProfileStore.load(settings)
    settings.store_path.unlink()
    before = store.get("2261")
    event = ProfileEvent(
        customer_id="2261", ts=datetime(2018, 1, 4), type="order", items=[OrderLine(product_id="1", amount=2.0)]
    )
    with pytest.raises(StoreError, match="kefu store build"):
        store.record(event)
    assert store.get("2261") is before and not store.log_path.exists()


def test_clv_state_counts_purchase_days_like_the_calibration_summary():
    from datetime import date

    from segmentation.profile_update import CLVState, clv_after_order

    assert clv_after_order(None, date(2018, 1, 1), -5.0) is None  # a return is not a first purchase
    state = clv_after_order(None, date(2018, 1, 1), 10.0)
    assert state == CLVState(date(2018, 1, 1), date(2018, 1, 1), 0, 0.0)
    assert clv_after_order(state, date(2018, 1, 1), 4.0) == state  # the first day is not a repeat
    state = clv_after_order(state, date(2018, 1, 5), 6.0)
    state = clv_after_order(state, date(2018, 1, 5), 3.0)  # same day: one purchase day, its spend grows
    assert (state.frequency, state.repeat_total, state.last_day) == (1, 9.0, date(2018, 1, 5))
    assert clv_after_order(state, date(2018, 1, 9), -2.0) == state  # a return day is not a purchase day
    assert clv_after_order(state, date(2018, 1, 3), 8.0) == state  # older than the last purchase day
