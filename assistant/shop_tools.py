"""The assistant's tools. Each is a typed function whose first argument is the session's ``Deps`` (injected,
never model-supplied); schemas and argument descriptions come from the signatures and docstrings
(``assistant/tools.py``). None takes a customer id: "my" always means the session's customer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from langchain_core.tools import InjectedToolArg
from pydantic import Field

from assistant.display import on_topic
from assistant.events import ProductCard, price_text
from assistant.guardrails import fence
from assistant.services import Found
from assistant.session import Deps, PendingReturn
from assistant.sizes import size_of
from assistant.tool_data import (
    CaseData,
    OfferData,
    OrderData,
    OrdersData,
    ProfileData,
    PurchasesData,
    ReturnData,
    SearchData,
)
from assistant.tools import Tool, ToolError, ToolOutput, tool
from retrieval.reasons import Reason

Injected = Annotated[Deps, InjectedToolArg]


NO_MATCH_TEXT = {
    "not_carried": "The shop does not carry a match for this request.",
    "outside_limits": "The shop carries this, but nothing within the requested limits (price, brand, department).",
}


def listing(found: Found | list[ProductCard], note: str = "") -> ToolOutput:
    """Products as the model reads them (fenced: titles are shop data, not instructions) and as cards.
    ``data`` says whether they match: ``no_match`` ("not_carried" / "outside_limits") and ``alternatives``."""
    if not isinstance(found, Found):
        found = Found(found, note)
    alternatives = bool(found.no_match and found.alternatives)
    data = SearchData(no_match=found.no_match or None, alternatives=alternatives, note=found.note)
    head = ""
    if found.no_match:
        head = NO_MATCH_TEXT[found.no_match] + (" Related products, as alternatives:" if found.alternatives else "")
    note = f"\n{found.note}" if found.note else ""
    if not found.products:
        return ToolOutput(text=(head or "No matching products.") + note, data=data, products=[])
    lines = [f"{i}. {p.title} — {price_text(p.price)} ({p.reason})" for i, p in enumerate(found.products, 1)]
    text = (head + "\n" if head else "") + fence("products", "\n".join(lines)) + note
    return ToolOutput(text=text, data=data, products=found.products)


def _require_customer(deps: Deps) -> str:
    if deps.customer_id is None:
        raise ToolError("The shopper is not signed in; ask them to sign in to see orders or their profile.")
    return deps.customer_id


def _known_product(deps: Deps, product_id: str) -> str:
    if not deps.services.catalogue.details([product_id]):  # the error never repeats the id the model made up
        raise ToolError("That product id is not in the catalogue; use a product id from the results.")
    return product_id


@tool
def search_products(
    deps: Injected,
    query: str,
    max_price: float | None = None,
    min_price: float | None = None,
    department: str | None = None,
    categories: list[str] = Field(default_factory=list, max_length=10),
    brand: str | None = None,
    exclude_brand: str | None = None,
    exclude_words: list[str] = Field(default_factory=list, max_length=5),
    exclude_ids: list[str] = Field(default_factory=list, max_length=40),
    min_size: float | None = None,
    max_size: float | None = None,
    size_unit: Literal["oz", "count", "load"] = "oz",
    k: int = Field(5, ge=1, le=20),
) -> ToolOutput:
    """Search the shop's catalogue for products matching the shopper's words, within hard limits.

    Args:
        query: product words, e.g. "gluten free pasta"
        max_price: highest unit price allowed, in dollars
        min_price: lowest unit price allowed, in dollars
        department: only this department, e.g. "GROCERY"
        categories: only these categories (e.g. those of the products shown, for "a bigger one")
        brand: only this brand label ("National" or "Private" for store brand)
        exclude_brand: never this brand label
        exclude_words: never products whose name has one of these words (the shopper said "not the diet one")
        exclude_ids: never these products (shown already)
        min_size: only packages bigger than this, in size_unit
        max_size: only packages smaller than this, in size_unit
        size_unit: "oz" (weight or volume), "count" or "load"
        k: how many products to return
    """
    filters = {
        "max_price": max_price,
        "min_price": min_price,
        "departments": department or (),
        "categories": categories or (),
        "brands": brand or (),
        "exclude_brands": exclude_brand or (),
        "exclude_ids": exclude_ids or (),
    }
    filters = {key: v for key, v in filters.items() if v not in (None, ())}
    narrowed = bool(exclude_words) or min_size is not None or max_size is not None
    found = deps.services.catalogue.search(query, filters, 20 if narrowed else k, deps.customer_id)
    if not narrowed:
        return listing(found)
    fits = Fit([w.lower() for w in exclude_words], min_size, max_size, size_unit)
    kept = [c for c in on_topic(found.products, query) if fits(c)]
    if not kept and categories:  # within the shown categories, a card need not repeat the query's words ("catsup")
        kept = [c for c in found.products if fits(c)]
    kept = kept[:k]
    if found.products and not kept and not found.no_match:
        return listing(Found([], found.note, no_match="outside_limits"))
    return listing(Found(kept, found.note, found.no_match, found.alternatives and bool(kept)))


@dataclass(frozen=True)
class Fit:
    """What a narrowed search keeps: no ruled-out word, within the size asked for (shown ids are filtered by the
    search itself)."""

    words: list[str]
    min_size: float | None
    max_size: float | None
    unit: str

    def __call__(self, card: ProductCard) -> bool:
        title = card.title.lower()
        if any(re.search(rf"\b{re.escape(w)}", title) for w in self.words):
            return False
        if self.min_size is None and self.max_size is None:
            return True
        size = size_of(card.size or card.title)
        if size is None or size[1] != self.unit:
            return False
        return (self.min_size is None or size[0] > self.min_size) and (self.max_size is None or size[0] < self.max_size)


@tool
def recommend_for_me(deps: Injected, k: int = Field(5, ge=1, le=20), max_price: float | None = None) -> ToolOutput:
    """Recommend products for this shopper from their purchase history (popular picks for new shoppers).

    Args:
        k: how many products to return
        max_price: highest unit price allowed, in dollars
    """
    return listing(deps.services.catalogue.recommend(deps.customer_id, k, max_price))


@tool
def similar_items(deps: Injected, product_id: str, k: int = Field(5, ge=1, le=20)) -> ToolOutput:
    """Products similar to a given product (by meaning of their descriptions).

    Args:
        product_id: a product id from an earlier result
        k: how many products to return
    """
    return listing(deps.services.catalogue.similar(_known_product(deps, product_id), k))


@tool
def bought_together(deps: Injected, product_id: str, k: int = Field(5, ge=1, le=20)) -> ToolOutput:
    """Products other shoppers often buy in the same basket as a given product.

    Args:
        product_id: a product id from an earlier result
        k: how many products to return
    """
    return listing(deps.services.catalogue.bought_together(_known_product(deps, product_id), k))


@tool
def compare_products(deps: Injected, product_ids: list[str] = Field(min_length=2, max_length=5)) -> ToolOutput:
    """Compare two to five products side by side (price, department, category, brand, size).

    Args:
        product_ids: two to five product ids from earlier results
    """
    cards = deps.services.catalogue.details(product_ids)
    known = {c.product_id for c in cards}
    if missing := [p for p in product_ids if p not in known]:
        raise ToolError(f"{len(missing)} of the product ids are not in the catalogue; use ids from the results.")
    priced = [c for c in cards if c.price is not None]
    return listing(cards, f"Cheapest: {min(priced, key=lambda c: c.price).title}." if priced else "")


@tool
def get_my_profile(deps: Injected) -> ToolOutput:
    """The signed-in shopper's own shopping profile: the categories they buy most, their usual price band and the
    shop's offers for them."""
    customer = _require_customer(deps)
    if deps.services.profiles is not None:  # the fitted profile; its analytics stay with staff (profiles.get)
        full = deps.services.profiles.get(customer).model_dump()
        top, band = full.get("top_categories", []), full.get("price_band")
    else:
        taste = deps.services.catalogue.taste(customer)
        if taste is None:
            raise ToolError("No purchase history yet for this shopper.")
        top, band = taste.top_categories, list(taste.price_band)
    picks = [c.product_id for c in deps.services.catalogue.recommend(customer, 10, None).products]
    offers = [
        OfferData(campaign_id=o.campaign_id, ends=str(o.ends) if o.ends else None, coupons=o.coupons)
        for o in deps.services.orders.offers(customer, 3, picks)  # campaigns for the shopper's picks first
    ]
    data = ProfileData(customer_id=customer, top_categories=top, price_band=band, offers=offers)
    return ToolOutput(text=fence("profile", str(data.model_dump(mode="json"))), data=data)


@tool
def my_purchases(
    deps: Injected, which: Literal["last_order", "usual"] = "last_order", k: int = Field(8, ge=1, le=20)
) -> ToolOutput:
    """What the signed-in shopper bought: the items of their last order, or the products they buy most often.

    Args:
        which: "last_order" for the most recent order's items, "usual" for what they buy most often
        k: how many products to return
    """
    customer = _require_customer(deps)
    orders = deps.services.orders
    if which == "usual":
        usual = orders.usual(customer, 2 * k)
        counts = dict(usual)
        cards = _one_per_title(deps.services.catalogue.details([pid for pid, _ in usual]))[:k]
        cards = [_personal(c, f"you bought it in {_times(counts[c.product_id])}") for c in cards]
        return ToolOutput(text=listing(cards).text, data=PurchasesData(which=which, lines=len(cards)), products=cards)
    recent = orders.recent(customer, 1)
    order = orders.order(customer, recent[0].order_id) if recent else None
    if order is None:
        return ToolOutput(text="No orders on this account yet.", data=PurchasesData(which=which))
    quantity = {line.product_id: line.quantity for line in order.lines}
    cards = _one_per_title(deps.services.catalogue.details(list(quantity)))[:k]
    cards = [_personal(c, f"you bought {quantity[c.product_id]:g}") for c in cards]
    data = PurchasesData(
        which=which, order_id=order.order_id, ordered_at=_day(order.ordered_at), lines=len(order.lines)
    )
    return ToolOutput(text=listing(cards).text, data=data, products=cards)


def _one_per_title(cards: list[ProductCard]) -> list[ProductCard]:
    """The first card of each display title: two products that read the same are shown once."""
    first: dict[str, ProductCard] = {}
    for card in cards:
        first.setdefault(card.title, card)
    return list(first.values())


def _personal(card: ProductCard, text: str) -> ProductCard:
    return card.model_copy(update={"reasons": [Reason(kind="personal", text=text)]})


def _times(n: int) -> str:
    return "1 order" if n == 1 else f"{n} orders"


@tool
def list_my_orders(deps: Injected, limit: int = Field(5, ge=1, le=20)) -> ToolOutput:
    """The signed-in shopper's most recent orders with date, status, item count and total.

    Args:
        limit: how many of the latest orders to list
    """
    orders = deps.services.orders.recent(_require_customer(deps), limit)
    if not orders:
        return ToolOutput(text="No orders on this account yet.", data=OrdersData(order_ids=[]))
    lines = [
        f"Order {o.order_id} on {_day(o.ordered_at)}: {o.status}, {o.items} item(s), ${o.total:.2f}" for o in orders
    ]
    return ToolOutput(text="\n".join(lines), data=OrdersData(order_ids=[o.order_id for o in orders]))


@tool
def order_status(deps: Injected, order_id: str) -> ToolOutput:
    """Status and contents of one of the signed-in shopper's orders.

    Args:
        order_id: the order's id, as the shopper or list_my_orders gave it
    """
    order = deps.services.orders.order(_require_customer(deps), order_id)
    if order is None:  # never reveal whether someone else's order exists, nor repeat the id asked for
        raise ToolError("That order is not on this shopper's account; list_my_orders shows theirs.")
    lines = [f"Order {order.order_id} placed {_day(order.ordered_at)}: {order.status}."]
    lines += [f"- {line.title} × {line.quantity:g}: ${line.amount:.2f}" for line in order.lines]
    return ToolOutput(
        text=fence("order", "\n".join(lines)), data=OrderData(order_id=order.order_id, status=order.status)
    )


@tool
def start_return(
    deps: Injected, order_id: str, reason: str = Field("", max_length=300), product_id: str | None = None
) -> ToolOutput:
    """Begin a return for one of the shopper's orders. Nothing happens until the shopper confirms next turn.

    Args:
        order_id: the order to return
        reason: why, in the shopper's words
        product_id: one item of that order to return; empty returns the whole order
    """
    order = deps.services.orders.order(_require_customer(deps), order_id)
    if order is None:
        raise ToolError("That order is not on this shopper's account; list_my_orders shows theirs.")
    product_id = product_id or None  # "" is the whole order too
    if product_id is not None and product_id not in {line.product_id for line in order.lines}:
        raise ToolError("That product is not in that order; order_status lists its items.")
    deps.session.pending_return = PendingReturn(order_id, product_id, reason or "not given", deps.session.turn)
    what = f"item {product_id} of order {order_id}" if product_id else f"order {order_id}"
    return ToolOutput(
        text=f"Return of {what} prepared. Ask the shopper to confirm with 'yes'.",
        data=ReturnData(order_id=order_id, product_id=product_id, pending=True),
    )


@tool
def confirm_return(deps: Injected) -> ToolOutput:
    """Request the return the shopper was asked to confirm last turn (after they said yes)."""
    pending = deps.session.pending_return
    if pending is None or pending.asked_turn != deps.session.turn - 1:
        raise ToolError("There is no return waiting for confirmation; start one with start_return.")
    customer = _require_customer(deps)
    deps.session.pending_return = None
    return_id = deps.services.cases.create_return(customer, pending.order_id, pending.product_id, pending.reason)
    return ToolOutput(
        text=f"Return {return_id} requested for order {pending.order_id}.",
        data=ReturnData(order_id=pending.order_id, product_id=pending.product_id, return_id=return_id),
    )


@tool
def handoff_to_human(
    deps: Injected, reason: str = Field(max_length=300), priority: Literal["normal", "high"] = "normal"
) -> ToolOutput:
    """Open a case for a human support agent, with a summary of the conversation so far.

    Args:
        reason: what the shopper needs help with
        priority: "high" for urgent or valuable cases
    """
    s = deps.session
    summary = {
        "intents": s.intents[-5:],
        "slots": s.slots.model_dump(exclude_defaults=True) if s.slots else {},
        "items_shown": list(s.seen)[-10:],
        "tried": s.tried[-10:],
        "customer_id": s.customer_id,
    }
    case_id = deps.services.cases.open_case(s.conversation_id, s.customer_id, priority, reason, summary)
    return ToolOutput(
        text=f"Case {case_id} opened ({priority} priority); a person will reply here.",
        data=CaseData(case_id=case_id, priority=priority, summary=summary),
    )


def _day(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d") if ts else "?"


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        search_products,
        recommend_for_me,
        similar_items,
        bought_together,
        compare_products,
        get_my_profile,
        my_purchases,
        list_my_orders,
        order_status,
        start_return,
        confirm_return,
        handoff_to_human,
    )
}
