"""What the assistant needs from the shop, as Protocols, and the typed values they return.

The loop and the tools see only these interfaces (through ``Deps``), so the loop's logic is unit-tested with
small in-memory fakes (``tests/fake_services.py``) and its features with the real parts
(``assistant/shop.py``: DuckDB, the hybrid product search, the fitted profiles, the records database).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

from assistant.events import ProductCard
from assistant.understanding.catalogue import Lexicon


@dataclass(frozen=True)
class Found:
    """Products a catalogue call returned, and a note for the shopper (e.g. "Popular picks in the shop.")."""

    products: list[ProductCard]
    note: str = ""
    no_match: Literal["", "not_carried", "outside_limits"] = ""  # "": the products match what was asked
    alternatives: bool = False  # no match, and ``products`` are related products offered as alternatives


@dataclass(frozen=True)
class ShopperTaste:
    """What the shopper's own purchases say (for personal ranking, treatment and their profile)."""

    top_categories: list[str]
    private_label_share: float
    price_band: tuple[float | None, float | None] = (None, None)


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    title: str
    quantity: float
    amount: float


@dataclass(frozen=True)
class Order:
    order_id: str
    ordered_at: datetime | None
    status: str
    items: int
    total: float
    lines: list[OrderLine] = field(default_factory=list)


@dataclass(frozen=True)
class Offer:
    """A campaign of the shop's that targets this customer (their coupons belong to it)."""

    campaign_id: str
    ends: date | None
    coupons: int  # coupon codes in the campaign


@dataclass(frozen=True)
class Coupon:
    coupon_upc: str
    campaign_id: str
    product_id: str


class Catalogue(Protocol):
    """The product catalogue as shoppers may see it (in stock only)."""

    def search(self, query: str, filters: dict[str, Any], k: int, customer_id: str | None) -> Found: ...

    def recommend(self, customer_id: str | None, k: int, max_price: float | None) -> Found: ...

    def similar(self, product_id: str, k: int) -> Found: ...

    def bought_together(self, product_id: str, k: int) -> Found: ...

    def details(self, product_ids: list[str]) -> list[ProductCard]: ...

    def carries(self, words: str) -> bool:
        """The catalogue has a match for these product words (the no-match rule, without showing anything)."""
        ...

    def taste(self, customer_id: str) -> ShopperTaste | None: ...

    def vocabulary(self) -> frozenset[str]: ...

    def lexicon(self) -> Lexicon:
        """The catalogue's words (vocabulary, every known word, names holding "and", type names)."""
        ...

    def related(self, phrase: str, k: int = 4) -> list[str]:
        """Product types closest in meaning to a need ("hay fever" -> allergy relief …)."""
        ...

    def brands(self) -> list[str]: ...


class Orders(Protocol):
    """A customer's own orders and offers; every method takes the session's customer id."""

    def recent(self, customer_id: str, limit: int) -> list[Order]: ...

    def order(self, customer_id: str, order_id: str) -> Order | None: ...

    def usual(self, customer_id: str, k: int) -> list[tuple[str, int]]:
        """The products this customer bought in the most orders: (product id, orders), most first."""
        ...

    def coupon_for(self, customer_id: str, product_ids: list[str]) -> Coupon | None: ...

    def offers(self, customer_id: str, limit: int, prefer: list[str] | None = None) -> list[Offer]:
        """The campaigns that target this customer: those with a coupon for a ``prefer`` product (the
        recommender's picks) first, then the latest ending."""
        ...

    def busiest_customers(self, n: int) -> list[str]: ...


class CustomerProfile(Protocol):
    segment: str | None

    def model_dump(self) -> dict[str, Any]: ...


class Profiles(Protocol):
    """Fitted customer profiles (``kefu segment fit``); KeyError-like errors for unknown customers."""

    def get(self, customer_id: str) -> CustomerProfile: ...


class Cases(Protocol):
    """Handoffs to a person and return requests (``kefu.records.cases.CaseBook``)."""

    def open_case(
        self, conversation_id: str, customer_id: str | None, priority: str, reason: str, summary: dict
    ) -> str: ...

    def create_return(self, customer_id: str, order_id: str, product_id: str | None, reason: str) -> str: ...


@dataclass
class Services:
    """Shared, thread-safe services, created once per process (``assistant/factory.py``)."""

    catalogue: Catalogue
    orders: Orders
    cases: Cases
    profiles: Profiles | None = None
