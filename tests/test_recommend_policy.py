"""The display policy: what a proactive recommendation may show (sellable, priced, no non-merchandise lines,
tobacco or alcohol), from the packaged file or a shop's own, on the real demo store."""

from __future__ import annotations

import duckdb
import pytest

from kefu.errors import ConfigError
from recommend.policy import DisplayPolicy


def test_the_packaged_policy_keeps_out_coupons_fuel_tobacco_and_alcohol():
    policy = DisplayPolicy.load()
    assert policy.excluded_by("MISCELLANEOUS", "COUPON/MISC ITEMS") == "non_merchandise"
    assert policy.excluded_by("KIOSK-GAS", None) == "non_merchandise"
    assert policy.excluded_by("DRUG GM", "CIGARETTES") == "tobacco"
    assert policy.excluded_by("GROCERY", "beers/ales") == "alcohol"  # case-insensitive
    assert policy.excluded_by("SPIRITS", "ANYTHING") == "alcohol"
    assert policy.excluded_by("GROCERY", "CHEESE") is None
    assert policy.excluded_by("DRUG GM", "SMOKING CESSATIONS") is None  # help to stop smoking is not tobacco


def test_a_shop_edits_its_own_policy_and_a_broken_one_is_named(tmp_path):
    own = tmp_path / "policy.toml"
    own.write_text('[sweets]\ncategories = ["CANDY - PACKAGED"]\n')
    policy = DisplayPolicy.load(own)
    assert policy.excluded_by("DRUG GM", "CANDY - PACKAGED") == "sweets"
    assert policy.excluded_by("DRUG GM", "CIGARETTES") is None
    own.write_text("[sweets\n")
    with pytest.raises(ConfigError, match="Cannot read the display policy"):
        DisplayPolicy.load(own)
    own.write_text('[sweets]\nbrands = ["X"]\n')
    with pytest.raises(ConfigError, match=r"\[sweets\] may only hold"):
        DisplayPolicy.load(own)


def test_on_the_demo_store_only_sellable_merchandise_is_shown(demo_store):
    con = duckdb.connect(str(demo_store), read_only=True)
    shown = DisplayPolicy.load().shown(con)
    rows = con.execute("SELECT product_id, department, category, price, in_stock FROM products").fetchall()
    con.close()
    by_id = {r[0]: r for r in rows}
    assert len(shown) > 1000
    assert all(by_id[p][3] is not None and by_id[p][3] > 0 and by_id[p][4] for p in shown)
    shown_categories = {by_id[p][2] for p in shown}
    for category in ("CIGARETTES", "BEERS/ALES", "DOMESTIC WINE", "COUPON/MISC ITEMS", "FUEL"):
        assert any(r[2] == category for r in rows), category  # the store has them ...
        assert category not in shown_categories  # ... and none is shown
    assert "CHEESE" in shown_categories
