"""The assistant's tools. Each is a typed function whose first argument is the session's ``Deps``; schemas come
from the signatures (``assistant/tools.py``). None takes a customer id: "my" always means the session's customer.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from assistant import store
from assistant.events import ProductCard, price_text
from assistant.guardrails import fence
from assistant.session import Deps, PendingReturn
from assistant.tools import Tool, ToolError, tool


class ProductList(BaseModel):
    products: list[ProductCard]
    note: str = ""

    def as_text(self) -> str:
        if not self.products:
            return "No matching products." + (f" {self.note}" if self.note else "")
        lines = [f"{i}. {p.title} — {price_text(p.price)} ({p.reason})" for i, p in enumerate(self.products, 1)]
        return fence("products", "\n".join(lines)) + (f"\n{self.note}" if self.note else "")


class TextResult(BaseModel):
    text: str
    data: dict = Field(default_factory=dict)

    def as_text(self) -> str:
        return self.text


_RANK_NOTE = re.compile(r"\s*\((?:keyword|semantic) rank \d+\)")


def _reason(reasons: list[str]) -> str:
    """The shopper-facing reason: personal reasons first, without the internal rank numbers."""
    personal = [r for r in reasons if r.startswith(("you ", "within your"))]
    chosen = (personal + [r for r in reasons if r not in personal])[:2]
    return "; ".join(_RANK_NOTE.sub("", r) for r in chosen)


def _cards(results) -> list[ProductCard]:
    return [
        ProductCard(
            product_id=r.product_id,
            title=r.title,
            price=r.price,
            department=r.department,
            category=r.category,
            brand=r.brand,
            reason=_reason(r.reasons),
        )
        for r in results
    ]


def _profile(deps: Deps):
    """The shopper profile used for personal re-ranking (None for guests)."""
    if deps.customer_id is None:
        return None
    from retrieval.rerank import profile_from_store

    with store.connect(deps.settings.store_path) as con:
        try:
            return profile_from_store(con, deps.customer_id)
        except Exception:  # noqa: BLE001 - an unknown customer simply gets unpersonalised results
            return None


def _require_customer(deps: Deps) -> str:
    if deps.customer_id is None:
        raise ToolError("The shopper is not signed in; ask them to sign in to see orders or their profile.")
    return deps.customer_id


@tool
def search_products(
    deps: Deps,
    query: str,
    max_price: float | None = None,
    min_price: float | None = None,
    department: str | None = None,
    brand: str | None = None,
    exclude_brand: str | None = None,
    k: int = Field(5, ge=1, le=20),
) -> ProductList:
    """Search the shop's catalogue for products matching the shopper's words, within hard limits.

    Args:
        query: product words, e.g. "gluten free pasta"
        max_price: highest unit price allowed
        min_price: lowest unit price allowed
        department: only this department, e.g. "GROCERY"
        brand: only this brand label ("National" or "Private" for store brand)
        exclude_brand: never this brand label
        k: how many products to return
    """
    filters = {
        "max_price": max_price,
        "min_price": min_price,
        "departments": department or (),
        "brands": brand or (),
        "exclude_brands": exclude_brand or (),
        "in_stock": True,
    }
    filters = {key: v for key, v in filters.items() if v not in (None, ())}
    response = deps.services.search.search(query, filters, k=k, customer=_profile(deps))
    return ProductList(products=_cards(response.results), note=" ".join(response.warnings))


@tool
def recommend_for_me(deps: Deps, k: int = Field(5, ge=1, le=20), max_price: float | None = None) -> ProductList:
    """Recommend products for this shopper from their purchase history (popular picks for new shoppers)."""
    profile = _profile(deps)
    filters: dict = {"in_stock": True, "min_price": 0.01}
    if max_price is not None:
        filters["max_price"] = max_price
    if profile is not None and profile.category_affinity:
        top = sorted(profile.category_affinity, key=profile.category_affinity.get, reverse=True)[:3]
        filters["categories"] = top
        response = deps.services.search.search("", filters, k=k, customer=profile)
        return ProductList(products=_cards(response.results), note="Based on the categories you buy most.")
    response = deps.services.search.search("", filters, k=k)
    return ProductList(products=_cards(response.results), note="Popular picks in the shop.")


@tool
def similar_items(deps: Deps, product_id: str, k: int = Field(5, ge=1, le=20)) -> ProductList:
    """Products similar to a given product (by meaning of their descriptions)."""
    from retrieval.related import similar_items as similar

    return ProductList(products=_cards(similar(deps.services.search, product_id, k, {"in_stock": True})))


@tool
def bought_together(deps: Deps, product_id: str, k: int = Field(5, ge=1, le=20)) -> ProductList:
    """Products other shoppers often buy in the same basket as a given product."""
    from retrieval.related import bought_together as together

    with store.connect(deps.settings.store_path) as con:
        rows = together(con, product_id, k=k, min_support=2)
    cards = [
        ProductCard(
            product_id=r.product_id,
            title=r.title or r.product_id,
            price=r.price,
            reason=f"bought together in {r.support} baskets",
        )
        for r in rows
        if r.title
    ]
    return ProductList(products=cards, note="" if cards else "Not enough baskets to say.")


@tool
def compare_products(deps: Deps, product_ids: list[str] = Field(min_length=2, max_length=5)) -> ProductList:
    """Compare two to five products side by side (price, department, category, brand, size)."""
    with store.connect(deps.settings.store_path) as con:
        placeholders = ",".join("?" * len(product_ids))
        rows = con.execute(
            f"SELECT product_id, title, price, department, category, brand, package_size FROM products "
            f"WHERE product_id IN ({placeholders})",
            product_ids,
        ).fetchall()
    found = {r[0]: r for r in rows}
    missing = [p for p in product_ids if p not in found]
    if missing:
        raise ToolError(f"Unknown product id(s): {', '.join(missing)}.")
    cards = []
    for pid in product_ids:
        _, title, price, dept, cat, brand, size = found[pid]
        facts = ", ".join(x for x in (brand and f"{brand} label", size, cat) if x)
        cards.append(
            ProductCard(
                product_id=pid, title=title, price=price, department=dept, category=cat, brand=brand, reason=facts
            )
        )
    priced = [c for c in cards if c.price is not None]
    note = f"Cheapest: {min(priced, key=lambda c: c.price).title}." if priced else ""
    return ProductList(products=cards, note=note)


@tool
def get_my_profile(deps: Deps) -> TextResult:
    """The signed-in shopper's own profile: segment, persona, value band and top categories."""
    customer = _require_customer(deps)
    profiles = deps.services.profiles
    if profiles is not None:
        profile = profiles.get(customer)
        data = profile.model_dump() if hasattr(profile, "model_dump") else dict(profile)
        return TextResult(text=fence("profile", str(data)), data=data)
    basic = _profile(deps)
    if basic is None:
        raise ToolError("No purchase history yet for this shopper.")
    top = sorted(basic.category_affinity, key=basic.category_affinity.get, reverse=True)[:3]
    data = {
        "customer_id": customer,
        "top_categories": top,
        "private_label_share": basic.private_label_share,
        "price_band": [basic.price_p25, basic.price_p75],
    }
    return TextResult(text=fence("profile", str(data)), data=data)


@tool
def list_my_orders(deps: Deps, limit: int = Field(5, ge=1, le=20)) -> TextResult:
    """The signed-in shopper's most recent orders with date, status, item count and total."""
    customer = _require_customer(deps)
    with store.connect(deps.settings.store_path) as con:
        rows = con.execute(
            """SELECT o.order_id, o.ordered_at, o.status, count(i.line_no), round(sum(i.amount), 2)
               FROM orders o LEFT JOIN order_items i USING (order_id) WHERE o.customer_id = ?
               GROUP BY ALL ORDER BY o.ordered_at DESC LIMIT ?""",
            [customer, limit],
        ).fetchall()
    if not rows:
        return TextResult(text="No orders on this account yet.")
    lines = [f"Order {oid} on {_day(ts)}: {status}, {n} item(s), ${total:.2f}" for oid, ts, status, n, total in rows]
    return TextResult(text="\n".join(lines), data={"order_ids": [r[0] for r in rows]})


@tool
def order_status(deps: Deps, order_id: str) -> TextResult:
    """Status and contents of one of the signed-in shopper's orders."""
    customer = _require_customer(deps)
    with store.connect(deps.settings.store_path) as con:
        order = con.execute(
            "SELECT ordered_at, status FROM orders WHERE order_id = ? AND customer_id = ?", [order_id, customer]
        ).fetchone()
        if order is None:  # never reveal whether someone else's order exists
            raise ToolError(f"No order {order_id} on this shopper's account; `list_my_orders` shows theirs.")
        items = con.execute(
            """SELECT coalesce(p.title, i.product_id), i.quantity, i.amount FROM order_items i
               LEFT JOIN products p USING (product_id) WHERE i.order_id = ? ORDER BY i.line_no""",
            [order_id],
        ).fetchall()
    lines = [f"Order {order_id} placed {_day(order[0])}: {order[1]}."]
    lines += [f"- {title} × {qty:g}: ${amount:.2f}" for title, qty, amount in items]
    return TextResult(text=fence("order", "\n".join(lines)), data={"order_id": order_id, "status": order[1]})


@tool
def start_return(
    deps: Deps, order_id: str, reason: str = Field("", max_length=300), product_id: str | None = None
) -> TextResult:
    """Begin a return for one of the shopper's orders. Nothing happens until the shopper confirms next turn."""
    customer = _require_customer(deps)
    with store.connect(deps.settings.store_path) as con:
        if (
            con.execute("SELECT 1 FROM orders WHERE order_id = ? AND customer_id = ?", [order_id, customer]).fetchone()
            is None
        ):
            raise ToolError(f"No order {order_id} on this shopper's account.")
    deps.session.pending_return = PendingReturn(order_id, product_id, reason or "not given", deps.session.turn)
    what = f"item {product_id} of order {order_id}" if product_id else f"order {order_id}"
    return TextResult(
        text=f"Return of {what} prepared. Ask the shopper to confirm with 'yes'.",
        data={"pending": True, "order_id": order_id},
    )


@tool
def handoff_to_human(
    deps: Deps, reason: str = Field(max_length=300), priority: Literal["normal", "high"] = "normal"
) -> TextResult:
    """Open a case for a human support agent, with a summary of the conversation so far."""
    s = deps.session
    summary = {
        "intents": s.intents[-5:],
        "slots": s.slots.model_dump(exclude_defaults=True) if s.slots else {},
        "items_shown": list(s.seen)[-10:],
        "tried": s.tried[-10:],
        "customer_id": s.customer_id,
    }
    case_id = deps.services.cases.open_case(s.conversation_id, s.customer_id, priority, reason, summary)
    return TextResult(
        text=f"Case {case_id} opened ({priority} priority); a person will reply here.",
        data={"case_id": case_id, "summary": summary},
    )


def _day(ts: datetime) -> str:
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
        list_my_orders,
        order_status,
        start_return,
        handoff_to_human,
    )
}
