"""Live customer profiles: what the assistant knows about the customer it is talking to.

``ProfileStore.load(settings)`` reads what ``kefu segment fit`` wrote (segments.duckdb + segments/*.json) into
memory once; ``get`` is then a dictionary lookup (microseconds). ``record(event)`` updates ONE customer:

- running totals (orders, net and gross spend, lines, discounts, coupon lines, first/last order) -> recency,
  frequency, monetary, tenure, basket value/size, inter-purchase interval, discount and coupon shares;
- RFM r/f/m against the fit-time bin edges (``rfm.score_value``) and the segment from the rule table;
- the cluster: nearest centroid (or most likely mixture component) of the fitted model (a new customer's taste
  is unknown: the population centre);
- an order given with its lines (product ids and amounts): department shares, private-label share, top
  department/category and the profile's top categories (each line's product looked up in the store; a product
  the catalogue does not know counts in spend and is reported back, as in the feature SQL); an order given as
  totals only dilutes the shares;
- CLV (P(alive), expected purchases and value) re-scored from the fitted BG/NBD + Gamma-Gamma parameters and
  the customer's purchase days, on every event (time passing lowers P(alive));
- propensity re-scored with the GBM when the GBM is the served model (else the fit-time score is kept);
- drift: total variation distance and PSI between fit-time and current segment shares, flagged above
  ``settings.segment_drift_threshold``.

Nothing else is recomputed: other customers keep their values (including recency, which is as of their own last
update). Events are appended to ``segments/profile_events.jsonl`` and replayed on load, so live updates survive a
restart without writing to a database another process may hold; ``kefu segment fit`` starts a fresh log.
Thread-safe: updates hold a lock and replace a customer's profile object whole; reads take no lock.
Left out: taste (product text) vectors are not updated live (the customer keeps the fit-time taste; a new
customer has the population centre); the CLV and cluster models are not refitted live.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import duckdb
import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from threadpoolctl import threadpool_limits

from kefu.errors import StoreError
from kefu.settings import Settings
from segmentation import profile_update as update
from segmentation import rfm
from segmentation.clusters import ClusterModel
from segmentation.propensity import load_gbm
from segmentation.workspace import FIT_FORMAT, segments_db, segments_dir

AGGREGATE_FIELDS = (
    "first_order",
    "last_order",
    "n_orders",
    "net_spend",
    "n_lines",
    "gross_spend",
    "discount_total",
    "n_purchase_lines",
    "n_coupon_lines",
)


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")  # how an ISO 8601 time starts


def _json_number(value: object) -> object:
    """A JSON number only: no boolean, no numeric string (what JSON Schema's ``integer`` accepts, 3.0 included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    return value


WholeNumber = Annotated[int, BeforeValidator(_json_number)]


class OrderLine(BaseModel):
    """One line of an order: the product and what was paid (negative: a return)."""

    product_id: str = Field(min_length=1, max_length=200)
    amount: StrictFloat
    discount: StrictFloat = Field(0.0, ge=0)
    coupon: StrictBool = False


class ProfileEvent(BaseModel):
    """Something a customer did. An order is given either with its ``items`` or as totals (amount is net: returns
    negative; return_amount is the returned part). With items, the totals are derived from them."""

    # Only orders have items: the validator below refuses items on a view or cart, and the JSON schema says so too,
    # so the API's OpenAPI schema tells clients (schemathesis found it silent). That totals given beside items
    # must agree with them is a sum no JSON schema can state.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "order"}}},
            "else": {"properties": {"items": {"maxItems": 0}}},
        }
    )

    customer_id: str = Field(min_length=1, max_length=200)
    ts: datetime = Field(description="ISO 8601; the store's local time (an offset, when given, is dropped)")
    type: Literal["order", "view", "cart"]
    # Numbers as the schema says (number / integer): `true` is no amount, "12" no count, -18 no time
    # (schemathesis found each taken by pydantic's lax mode).
    amount: StrictFloat = 0.0
    lines: WholeNumber = Field(0, ge=0)
    discount: StrictFloat = Field(0.0, ge=0)
    coupon_lines: WholeNumber = Field(0, ge=0)
    return_amount: StrictFloat = Field(0.0, le=0, description="negative: returned value inside the order")
    items: list[OrderLine] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _totals_from_items(self) -> ProfileEvent:
        if not self.items:
            return self
        if self.type != "order":
            raise ValueError(f"items belong to orders, not to a {self.type!r} event")
        derived = {
            "amount": round(sum(i.amount for i in self.items), 6),
            "lines": len(self.items),
            "discount": round(sum(i.discount for i in self.items if i.amount >= 0), 6),
            "coupon_lines": sum(1 for i in self.items if i.coupon and i.amount >= 0),
            "return_amount": round(sum(i.amount for i in self.items if i.amount < 0), 6),
        }
        for name, value in derived.items():
            given = getattr(self, name)
            if name in self.model_fields_set and abs(given - value) > 0.005:
                raise ValueError(
                    f"{name}={given} disagrees with the items ({value}); give the order either as items or as totals"
                )
            setattr(self, name, value)
        return self

    @field_validator("ts", mode="before")
    @classmethod
    def _written_time(cls, ts: object) -> object:
        """A time as ISO 8601 text, as the schema says: a number, or digits in a string, is no Unix time here."""
        if isinstance(ts, datetime) or (isinstance(ts, str) and ISO_DATE.match(ts)):
            return ts
        raise ValueError("ts is an ISO 8601 date and time, such as 2018-01-03T10:00:00 (an offset is optional)")

    @field_validator("ts")
    @classmethod
    def _local_time(cls, ts: datetime) -> datetime:
        """The store keeps local times without a zone; an aware time is taken as that local time."""
        return ts.replace(tzinfo=None)


# The store's times are local, without a zone (``ProfileEvent._local_time``): a JSON "date-time" needs an offset,
# so the schema says what is sent (schemathesis found profiles sent against a "date-time" they did not match).
LocalDatetime = Annotated[
    datetime,
    WithJsonSchema(
        {
            "type": "string",
            "description": "the store's local time, ISO 8601 without a zone",
            "examples": ["2018-01-02T00:00:00"],
        }
    ),  # fmt: skip
]


class CustomerProfile(BaseModel):
    customer_id: str
    as_of: LocalDatetime
    features: dict[str, float | int | str | None]
    r: int | None = None
    f: int | None = None
    m: int | None = None
    segment: str | None = None
    cluster: int | None = None
    persona: str | None = None
    clv_expected_value: float | None = None
    clv_expected_purchases: float | None = None
    p_alive: float | None = None
    alive_band: str | None = None  # likely active (>= 0.7) / uncertain / likely lapsed (< 0.3) / one purchase day
    propensity: float | None = None
    propensity_model: str | None = None
    top_categories: list[str] = Field(default_factory=list)
    price_band: str | None = None  # budget / mid / premium: average price per item vs fit-time terciles
    updated: Literal["fit", "live"] = "fit"

    @property
    def private_label_share(self) -> float | None:
        """Store-brand share of spend (read by the assistant's treatment rules)."""
        value = self.features.get("private_label_share")
        return float(value) if isinstance(value, int | float) else None


class Drift(BaseModel):
    tvd: float  # total variation distance, 0..1
    psi: float  # population stability index
    drifted: bool
    threshold: float
    fit_shares: dict[str, float]
    current_shares: dict[str, float]


class RecordResult(BaseModel):
    profile: CustomerProfile
    new_customer: bool
    segment_before: str | None
    drift: Drift
    unknown_products: list[str] = Field(default_factory=list)  # order lines whose product the store lacks


def alive_band(p: float | None, repeat_days: int | None = None) -> str | None:
    """BG/NBD gives P(alive) = 1 to anyone without a repeat purchase day, however long ago they bought; such a
    customer is banded "one purchase day" rather than "likely active"."""
    if p is None or math.isnan(p):
        return None
    if repeat_days == 0:
        return "one purchase day"
    return "likely active" if p >= 0.7 else "likely lapsed" if p < 0.3 else "uncertain"


def price_band(item_price: float | None, edges: list[float]) -> str | None:
    if item_price is None or math.isnan(item_price):
        return None
    return "budget" if item_price < edges[0] else "mid" if item_price < edges[1] else "premium"


def _none(value):
    """A DataFrame cell as a plain Python value; None for any missing marker."""
    if isinstance(value, list | tuple | np.ndarray):
        return [_none(v) for v in value]
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    return value.item() if isinstance(value, np.generic) else value


class ProfileStore:
    """In-memory profiles over a fitted segmentation; see the module docstring."""

    def __init__(
        self,
        profiles: dict[str, CustomerProfile],
        totals: dict[str, dict],
        taste: dict[str, list],
        meta: dict,
        model: ClusterModel,
        rules: list[rfm.SegmentRule],
        drift_threshold: float = 0.1,
        log_path: Path | None = None,
        model_dir: Path | None = None,
        clv: dict | None = None,
        store_path: Path | None = None,
        segments_path: Path | None = None,
    ) -> None:
        self._profiles = profiles
        self._totals = totals  # customer_id -> running totals (AGGREGATE_FIELDS)
        self._taste = taste  # customer_id -> projected taste block (list of floats)
        self._clv: dict[str, update.CLVState | None] = clv or {}  # customer_id -> purchase days for CLV
        self._category_spend: dict[str, dict] = {}  # customer_id -> {(department, category): spend}, on demand
        self._products: dict[str, tuple] | None = None  # product_id -> (department, category, store brand)
        self._segments_con: duckdb.DuckDBPyConnection | None = None
        self.meta = meta
        self.cluster_names = {int(k): v for k, v in meta["cluster_names"].items()}
        self.model = model
        self.rules = rules
        self.model_dir = model_dir
        self.store_path = store_path  # the shop store: products of order lines
        self.segments_path = segments_path  # segments.duckdb: fit-time category spend
        self._gbm: tuple | None = None  # (model, columns), loaded on the first update (sklearn is slow to import)
        self.drift_threshold = drift_threshold
        self.log_path = log_path
        self._lock = threading.RLock()
        self._segments = Counter(p.segment for p in profiles.values() if p.segment)
        self._listeners: list[Callable[[str], None]] = []  # told the customer id of every recorded event

    # -- loading ---------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, settings: Settings, *, replay: bool = True) -> ProfileStore:
        directory, db_path = segments_dir(settings), segments_db(settings)
        if not (directory / "fit.json").is_file() or not db_path.is_file():
            raise StoreError(f"No fitted segmentation in {settings.data_dir}; run `kefu segment fit` first.")
        meta = json.loads((directory / "fit.json").read_text())
        if meta.get("format") != FIT_FORMAT:
            raise StoreError(
                f"The segmentation in {settings.data_dir} was fitted by an older version of Kefu; "
                "run `kefu segment fit` again."
            )
        model = ClusterModel.load(directory)
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            frame = con.execute(PROFILE_SQL).df()
        except duckdb.Error as exc:
            raise StoreError(
                f"The fitted segmentation in {db_path} is incomplete ({exc}); run `kefu segment fit`."
            ) from exc
        finally:
            con.close()
        store = cls(
            {},
            {},
            {},
            meta,
            model,
            rfm.load_rules(),
            settings.segment_drift_threshold,
            directory / "profile_events.jsonl",
            directory,
            store_path=settings.store_path,
            segments_path=db_path,
        )
        store._fill(frame)
        if replay and store.log_path.is_file():
            for line in store.log_path.read_text().splitlines():
                if line.strip():
                    store._apply(ProfileEvent.model_validate_json(line))
        return store

    open = load  # the assistant's factory calls ProfileStore.open(settings)

    def _fill(self, frame: pd.DataFrame) -> None:
        as_of = datetime.fromisoformat(self.meta["as_of"])
        feature_cols = [c for c in frame.columns if c not in NOT_FEATURES]
        served = self.meta["propensity_served"]
        for row in frame.to_dict("records"):
            cid = row["customer_id"]
            features = {c: _none(row[c]) for c in feature_cols}
            cluster = _none(row["cluster"])
            self._profiles[cid] = CustomerProfile(
                customer_id=cid,
                as_of=as_of,
                features=features,
                r=_none(row["r"]),
                f=_none(row["f"]),
                m=_none(row["m"]),
                segment=_none(row["segment"]),
                cluster=None if cluster is None else int(cluster),
                persona=None if cluster is None else self.cluster_names.get(int(cluster)),
                clv_expected_value=_none(row["expected_value"]),
                clv_expected_purchases=_none(row["expected_purchases"]),
                p_alive=_none(row["p_alive"]),
                alive_band=alive_band(_none(row["p_alive"]), _none(row["clv_frequency"])),
                propensity=_none(row["propensity"]),
                propensity_model=served,
                top_categories=_none(row["top_categories"]) or [],
                price_band=price_band(_item_price(features), self.meta["price_edges"]),
            )
            self._totals[cid] = {k: _none(row[k]) for k in AGGREGATE_FIELDS}
            self._taste[cid] = _none(row["taste"]) or []
            self._clv[cid] = update.CLVState.from_fit({k: _none(row[k]) for k in CLV_FIELDS})
        self._segments = Counter(p.segment for p in self._profiles.values() if p.segment)

    # -- reading ------------------------------------------------------------------------------------------------
    def get(self, customer_id: str) -> CustomerProfile:
        profile = self._profiles.get(customer_id)
        if profile is None:
            raise StoreError(
                f"No profile for customer {customer_id!r}; check the id (`kefu store info`) or record "
                "an event for a new customer first."
            )
        return profile

    def __contains__(self, customer_id: str) -> bool:
        return customer_id in self._profiles

    def __len__(self) -> int:
        return len(self._profiles)

    def drift(self) -> Drift:
        with self._lock:
            return drift(self.meta["segment_shares"], dict(self._segments), self.drift_threshold)

    # -- updating -------------------------------------------------------------------------------------------------
    def on_record(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(customer_id)`` after each recorded event (e.g. to drop what was cached about them)."""
        self._listeners.append(listener)

    def record(self, event: ProfileEvent) -> RecordResult:
        """Apply one event to its customer, append it to the event log, tell the listeners, and report the
        segment mix drift."""
        with self._lock:
            result = self._apply(event)
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("a") as fh:
                    fh.write(event.model_dump_json() + "\n")
        for listener in self._listeners:
            listener(event.customer_id)
        return result

    def _apply(self, event: ProfileEvent) -> RecordResult:
        cid = event.customer_id
        before = self._profiles.get(cid)
        totals = dict(
            self._totals.get(cid) or {k: 0 for k in AGGREGATE_FIELDS} | {"first_order": None, "last_order": None}
        )
        features = dict(before.features) if before else {}
        top_categories = list(before.top_categories) if before else []
        unknown: list[str] = []
        if event.type == "order":
            lines = self._bought_lines(event)
            unknown = sorted({line.product_id for line in lines if not line.known})
            gross_before, orders_before = totals["gross_spend"], totals["n_orders"]
            features.update(update.time_features(features, orders_before, event.ts))
            update.add_order(totals, event.ts, _order_totals(event))
            features.update(
                update.share_features(features, self.meta["dept_columns"], gross_before, totals["gross_spend"], lines)
            )
            if lines:
                spend = self._spend_by_category(cid)
                update.add_category_spend(spend, lines)
                tops = update.top_lists(spend)
                top_categories = tops.pop("top_categories")
                features.update(tops)
            self._clv[cid] = update.clv_after_order(self._clv.get(cid), event.ts.date(), event.amount)
        else:
            key = "n_views" if event.type == "view" else "n_carts"
            features[key] = (features.get(key) or 0) + 1
        fit_as_of = datetime.fromisoformat(self.meta["as_of"])
        as_of = max(fit_as_of, datetime.combine(event.ts.date() + timedelta(days=1), datetime.min.time()))
        if totals["n_orders"]:
            features.update(update.features_from_totals(totals, as_of))
        profile = self._score(cid, features, totals, as_of, before, top_categories)
        self._totals[cid] = totals
        if before is not None and before.segment:
            self._segments[before.segment] -= 1
        if profile.segment:
            self._segments[profile.segment] += 1
        self._profiles[cid] = profile  # one assignment: readers see the old or the new profile, never a mix
        return RecordResult(
            profile=profile,
            new_customer=before is None,
            segment_before=before.segment if before else None,
            drift=drift(self.meta["segment_shares"], dict(self._segments), self.drift_threshold),
            unknown_products=unknown,
        )

    def _bought_lines(self, event: ProfileEvent) -> list[update.BoughtLine]:
        """The event's order lines with their products' department, category and store-brand flag."""
        if not event.items:
            return []
        products = self._product_groups()
        return [
            update.BoughtLine(
                i.product_id, i.amount, i.product_id in products, *products.get(i.product_id, (None, None, False))
            )
            for i in event.items
        ]

    def _product_groups(self) -> dict[str, tuple]:
        """product_id -> (department, category, store brand), read from the store on the first order with lines."""
        if self._products is None:
            if self.store_path is None or not self.store_path.is_file():
                raise StoreError(
                    f"No shop store at {self.store_path} to look up the order's products; build or "
                    "import it (`kefu store build`), or record the order as totals without items."
                )
            with duckdb.connect(str(self.store_path), read_only=True) as con:
                rows = con.execute(
                    "SELECT product_id, department, category, coalesce(brand = 'Private', false) FROM products"
                ).fetchall()
            self._products = {pid: (dept, cat, private) for pid, dept, cat, private in rows}
        return self._products

    def _spend_by_category(self, cid: str) -> dict:
        """The customer's fit-time spend per (department, category), read once, then kept up to date here."""
        if cid not in self._category_spend:
            spend: dict = {}
            if self.segments_path is not None and cid in self._totals:
                if self._segments_con is None:  # used under the update lock only; the fit replaces the file
                    self._segments_con = duckdb.connect(str(self.segments_path), read_only=True)
                rows = self._segments_con.execute(
                    "SELECT department, category, spend FROM customer_category_spend WHERE customer_id = $c", {"c": cid}
                ).fetchall()
                spend = {(d, c): float(v) for d, c, v in rows}
            self._category_spend[cid] = spend
        return self._category_spend[cid]

    def _served_gbm(self) -> tuple:
        """(GBM, its columns) when the GBM is the served propensity model, else (None, [])."""
        if self._gbm is None:
            served = self.meta["propensity_served"] == "gbm" and self.model_dir is not None
            self._gbm = load_gbm(self.model_dir) if served else (None, [])
        return self._gbm

    def _score(
        self,
        cid: str,
        features: dict,
        totals: dict,
        as_of: datetime,
        before: CustomerProfile | None,
        top_categories: list[str],
    ) -> CustomerProfile:
        edges = self.meta["rfm_edges"]
        r = f = m = segment = None
        if totals["n_orders"]:
            r = rfm.score_value("r", features["recency_days"], edges)
            f = rfm.score_value("f", features["frequency"], edges)
            m = rfm.score_value("m", features["monetary"], edges)
            segment = rfm.segment_of(r, f, self.rules)
        frame = pd.DataFrame([{c: features.get(c) for c in self.model.features}], dtype="float64")
        taste = self._taste.get(cid)
        taste_block = np.asarray([taste]) if taste else self.model.project_taste(None, 1)
        cluster = int(self.model.predict(np.hstack([self.model.numeric_block(frame), taste_block]))[0])
        propensity, model_name = (before.propensity, before.propensity_model) if before else (None, None)
        gbm, columns = self._served_gbm()
        if gbm is not None:
            row = pd.DataFrame([{c: features.get(c) for c in columns}], dtype="float64")
            with threadpool_limits(1):  # OpenMP threads for one row only cost time
                propensity, model_name = float(gbm.predict_proba(row)[0, 1]), "gbm"
        value = before.model_dump(include={"clv_expected_value", "clv_expected_purchases", "p_alive"}) if before else {}
        state, params = self._clv.get(cid), self.meta.get("clv_params")
        if state is not None and params:
            value = update.clv_scores(state, as_of.date() - timedelta(days=1), params, self.meta["clv_horizon_days"])
        return CustomerProfile(
            customer_id=cid,
            as_of=as_of,
            features=features,
            r=r,
            f=f,
            m=m,
            segment=segment,
            cluster=cluster,
            persona=self.cluster_names.get(cluster),
            propensity=propensity,
            propensity_model=model_name,
            alive_band=alive_band(value.get("p_alive"), state.frequency if state else None),
            top_categories=top_categories,
            price_band=price_band(_item_price(features), self.meta["price_edges"]),
            updated="live",
            **value,
        )


def _order_totals(event: ProfileEvent) -> update.OrderTotals:
    """The event's totals (with items, ProfileEvent derived them from the lines). Given as totals only, every
    line counts as a purchase line: the event does not say which lines were returns."""
    purchase_lines = sum(1 for i in event.items if i.amount >= 0) if event.items else event.lines
    return update.OrderTotals(
        net=event.amount,
        gross=event.amount - event.return_amount,
        discount=event.discount,
        lines=event.lines,
        purchase_lines=purchase_lines,
        coupon_lines=event.coupon_lines,
    )


def _item_price(features: dict) -> float | None:
    size = features.get("avg_basket_size")
    value = features.get("avg_basket_value")
    return value / size if size and value is not None else None


def drift(fit_shares: dict[str, float], counts: dict[str, int], threshold: float) -> Drift:
    """Total variation distance and PSI between the fit-time segment shares and the current counts."""
    total = sum(counts.values()) or 1
    names = sorted(set(fit_shares) | set(counts))
    p = np.array([fit_shares.get(n, 0.0) for n in names])
    q = np.array([counts.get(n, 0) / total for n in names])
    tvd = 0.5 * float(np.abs(p - q).sum())
    eps = 1e-4
    psi = float(((q - p) * np.log((q + eps) / (p + eps))).sum())
    return Drift(
        tvd=round(tvd, 4),
        psi=round(psi, 4),
        drifted=tvd > threshold,
        threshold=threshold,
        fit_shares={n: round(float(v), 4) for n, v in zip(names, p, strict=True)},
        current_shares={n: round(float(v), 4) for n, v in zip(names, q, strict=True)},
    )


CLV_FIELDS = ("clv_first_day", "clv_last_day", "clv_frequency", "clv_monetary_value")
NOT_FEATURES = (
    "customer_id",
    "as_of",
    "r",
    "f",
    "m",
    "segment",
    "cluster",
    "taste",
    "expected_value",
    "expected_purchases",
    "p_alive",
    "propensity",
    "top_categories",
    *AGGREGATE_FIELDS,
    *CLV_FIELDS,
)

PROFILE_SQL = """
SELECT f.*, r.r, r.f, r.m, r.segment, c.cluster, c.taste,
       v.expected_value, v.expected_purchases, v.p_alive, p.propensity, t.top_categories,
       v.first_day AS clv_first_day, v.last_day AS clv_last_day, v.frequency AS clv_frequency,
       v.monetary_value AS clv_monetary_value,
       a.* EXCLUDE (customer_id)
FROM customer_features f
LEFT JOIN customer_rfm r USING (customer_id)
LEFT JOIN customer_clusters c USING (customer_id)
LEFT JOIN customer_clv v USING (customer_id)
LEFT JOIN customer_propensity p USING (customer_id)
LEFT JOIN customer_top_categories t USING (customer_id)
LEFT JOIN customer_aggregates a USING (customer_id)
"""
