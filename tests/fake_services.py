"""Small in-memory stand-ins for the assistant's service Protocols (``assistant/services.py``), for unit tests
of the loop's logic. Features are tested with the real services (``tests/conftest.py: real_services``)."""

from __future__ import annotations

from datetime import datetime

from assistant.events import ProductCard
from assistant.services import Coupon, Found, Offer, Order, OrderLine, Services, ShopperTaste
from assistant.understanding.catalogue import Lexicon

PRODUCTS = [
    ProductCard(product_id="p1", title="SPAGHETTI 16 OZ", price=1.29, category="DRY NOODLES/PASTA", brand="Private"),
    ProductCard(
        product_id="p2", title="PENNE RIGATE 16 OZ", price=1.89, category="DRY NOODLES/PASTA", brand="National"
    ),
    ProductCard(product_id="p3", title="CHEDDAR CHEESE 8 OZ", price=3.49, category="CHEESE", brand="National"),
    ProductCard(product_id="p4", title="BRIE CHEESE 7 OZ", price=6.99, category="CHEESE", brand="National"),
]


class FakeCatalogue:
    def __init__(self, products: list[ProductCard] = PRODUCTS) -> None:
        self.products = products
        self.searches: list[tuple[str, dict]] = []

    def search(self, query, filters, k, customer_id):
        self.searches.append((query, filters))
        words = query.lower().split()
        hits = [
            p for p in self.products
            if any(w in p.title.lower() or w in (p.category or "").lower() for w in words)
            and p.price <= filters.get("max_price", 1e9) and p.price >= filters.get("min_price", 0)
            and p.brand != filters.get("exclude_brands")
        ]  # fmt: skip
        return Found(hits[:k])

    def recommend(self, customer_id, k, max_price):
        return Found([p for p in self.products if max_price is None or p.price <= max_price][:k], "Popular picks.")

    def similar(self, product_id, k):
        base = next(p for p in self.products if p.product_id == product_id)
        return Found([p for p in self.products if p.category == base.category and p.product_id != product_id][:k])

    def bought_together(self, product_id, k):
        return Found([], "Not enough baskets to say.")

    def carries(self, words):
        return bool(self.search(words, {}, 1, None).products)

    def details(self, product_ids):
        return [p for p in self.products if p.product_id in product_ids]

    def taste(self, customer_id):
        return ShopperTaste(["CHEESE"], 0.2, (1.0, 4.0))

    def vocabulary(self):
        return frozenset({"pasta", "cheese", "spaghetti", "penne", "cheddar"})

    def lexicon(self):
        return Lexicon(self.vocabulary(), frozenset(w for p in self.products for w in p.title.lower().split()))

    def related(self, phrase, k=4):
        return ["cheese", "pasta"][:k]

    def brands(self):
        return ["National", "Private"]


class FakeOrders:
    def __init__(self, orders: dict[str, list[Order]] | None = None) -> None:
        lines = [OrderLine("p1", "SPAGHETTI 16 OZ", 2, 2.58), OrderLine("p3", "CHEDDAR CHEESE 8 OZ", 1, 3.49)]
        default = {"c1": [Order("40000000001", datetime(2018, 1, 2), "delivered", 2, 4.78, lines)]}
        self.orders = orders if orders is not None else default

    def recent(self, customer_id, limit):
        return self.orders.get(customer_id, [])[:limit]

    def usual(self, customer_id, k):
        counts: dict[str, int] = {}
        for order in self.orders.get(customer_id, []):
            for line in order.lines:
                counts[line.product_id] = counts.get(line.product_id, 0) + 1
        return sorted(counts.items(), key=lambda kv: -kv[1])[:k]

    def busiest_customers(self, n):
        return sorted(self.orders, key=lambda c: -len(self.orders[c]))[:n]

    def order(self, customer_id, order_id):
        return next((o for o in self.orders.get(customer_id, []) if o.order_id == order_id), None)

    def coupon_for(self, customer_id, product_ids):
        return Coupon("C-1", "K-1", product_ids[0]) if customer_id == "coupon-lover" else None

    def offers(self, customer_id, limit, prefer=None):
        return [Offer("K-1", None, 1)][:limit] if customer_id == "coupon-lover" else []


class FakeCases:
    def __init__(self) -> None:
        self.cases: list[dict] = []
        self.returns: list[dict] = []

    def open_case(self, conversation_id, customer_id, priority, reason, summary):
        self.cases.append({"case_id": f"CASE-{len(self.cases) + 1}", "priority": priority, "summary": summary})
        return self.cases[-1]["case_id"]

    def create_return(self, customer_id, order_id, product_id, reason):
        self.returns.append({"return_id": f"RET-{len(self.returns) + 1}", "order_id": order_id})
        return self.returns[-1]["return_id"]


def fake_services(**overrides) -> Services:
    parts = {"catalogue": FakeCatalogue(), "orders": FakeOrders(), "cases": FakeCases(), "profiles": None}
    return Services(**{**parts, **overrides})
