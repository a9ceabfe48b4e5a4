"""The real services behind the assistant's Protocols (``assistant/services.py``): the hybrid product search
and the DuckDB store (``StoreCatalogue``), and the customer's orders and campaign coupons (``StoreOrders``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from assistant.display import display_title, is_store_brand, merge_alike, plain
from assistant.events import ProductCard
from assistant.policy import find_coupon
from assistant.services import Coupon, Found, Offer, Order, OrderLine, ShopperTaste
from assistant.understanding.catalogue import Lexicon, catalogue_lexicon
from kefu.cache import Recent
from kefu.errors import StoreError
from kefu.store import StoreReader
from recommend.model import Recommendation, Recommender
from recommend.policy import DisplayPolicy
from retrieval.hybrid import ProductSearch, SearchResult
from retrieval.match import MatchRule, search_evidence
from retrieval.reasons import Reason
from retrieval.related import bought_together, similar_items
from retrieval.rerank import ShopperProfile, profile_from_store

IN_STOCK = {"in_stock": True, "min_price": 0.01}  # sellable: in stock and priced
RELATED_MIN_COSINE = 0.3  # a product type this close in meaning to a need counts as related (Catalogue.related)
PROFILES_KEPT, PROFILE_TTL_S = 4096, 600.0  # shoppers' rank profiles kept (LRU), and for how long at most


def cards_of(results: list[SearchResult]) -> list[ProductCard]:
    return [
        ProductCard(
            product_id=r.product_id,
            title=r.title,
            price=r.price,
            department=r.department,
            category=r.category,
            brand=r.brand,
            reasons=r.reasons,
        )
        for r in results
    ]


REASON_KINDS = {
    "cycle": "personal",
    "repeat": "personal",
    "bought_with": "bought_together",
    "segment": "segment",
    "similar_shoppers": "shoppers_like_you",
    "popular": "popular",
}  # recommend's kinds -> a card's


def together(baskets: int) -> Reason:
    return Reason(kind="bought_together", text=f"bought together in {baskets} baskets", score=baskets)


class StoreCatalogue:
    """The catalogue over one search index and one store. The store is read through one connection, a cursor
    per thread (``StoreReader``); each shopper's rank profile (``profile_from_store``) is kept for
    ``PROFILE_TTL_S`` and dropped by ``forget`` when a live event changes that shopper (``assistant/factory.py``
    wires it to ``ProfileStore.on_record``)."""

    def __init__(
        self,
        search: ProductSearch,
        store_path: Path,
        match: MatchRule | None = None,
        reader: StoreReader | None = None,
        recommender: Recommender | None = None,
        policy: DisplayPolicy | None = None,
    ) -> None:
        self.index, self.store_path, self.match = search, store_path, match or MatchRule()
        self.recommender, self.policy = recommender, policy or DisplayPolicy.load()
        self._type_vectors: tuple[list[str], Any] | None = None
        self.reader = reader or StoreReader(store_path)
        self.profiles: Recent[str, ShopperProfile | None] = Recent(PROFILES_KEPT, PROFILE_TTL_S)
        con = self.reader.cursor()
        self._lexicon = catalogue_lexicon(con)
        self._brands = [
            r[0] for r in con.execute("SELECT DISTINCT brand FROM products WHERE brand IS NOT NULL").fetchall()
        ]
        self._shown = self.policy.shown(con)  # product_id -> price: what a recommendation may show

    def _rows(self, columns: str, ids: list[str]) -> list[tuple]:
        """(product_id, *columns) of these products, from the store."""
        if not ids:
            return []
        sql = f"SELECT product_id, {columns} FROM products WHERE product_id IN ({','.join('?' * len(ids))})"
        return self.reader.cursor().execute(sql, ids).fetchall()

    def readable(self, cards: list[ProductCard], k: int | None = None, merge: bool = True) -> list[ProductCard]:
        """Display titles from each row's own fields, alike cards merged (unless not ``merge``), at most ``k``."""
        if not cards:
            return cards
        rows = self._rows("product_type, category, package_size, brand", [c.product_id for c in cards])
        fields = {r[0]: r[1:] for r in rows}
        shown = []
        for card in cards:
            ptype, category, size, brand = fields.get(card.product_id, (None, None, None, None))
            title = display_title(ptype, category, size, brand, card.title)
            shown.append(card.model_copy(update={"title": title, "size": size or card.size}))
        return (merge_alike(shown) if merge else shown)[:k]

    def _profile(self, customer_id: str | None) -> ShopperProfile | None:
        return None if customer_id is None else self.profiles.get(customer_id, self._read_profile)

    def _read_profile(self, customer_id: str) -> ShopperProfile | None:
        con = self.reader.cursor()
        try:
            return profile_from_store(con, customer_id)
        except StoreError:  # an unknown customer simply gets unpersonalised results
            return None

    def forget(self, customer_id: str) -> None:
        """Read this shopper's profile afresh next time (a live event changed what they bought)."""
        self.profiles.forget(customer_id)

    def search(self, query: str, filters: dict[str, Any], k: int, customer_id: str | None) -> Found:
        """The best sellable products for the query; a no-match when the best are not what was asked for
        (``retrieval/match.py``): then related products come back only as labelled alternatives."""
        sellable = {**filters, **IN_STOCK, "min_price": max(filters.get("min_price") or 0.0, 0.01)}
        response = self.index.search(query, sellable, k=min(2 * k, 40), customer=self._profile(customer_id))
        note, cards = " ".join(response.warnings), self.readable(cards_of(response.results), k)
        if not query.strip():
            return Found(cards, note)
        evidence = search_evidence(self.index, query, response.results, self.match.top)
        if self.match.carried(evidence):
            return Found(cards, note)
        if sellable != IN_STOCK:  # carried, but not within the shopper's limits (budget, brand, department)?
            anywhere = self.index.search(query, IN_STOCK, k=self.match.top).results
            if self.match.carried(search_evidence(self.index, query, anywhere, self.match.top)):
                return Found([], note, no_match="outside_limits")
        if cards and self.match.related(evidence):
            return Found(cards, note, no_match="not_carried", alternatives=True)
        return Found([], note, no_match="not_carried")

    def carries(self, words: str) -> bool:
        if not words.strip():
            return False
        results = self.index.search(words, IN_STOCK, k=self.match.top).results
        return self.match.carried(search_evidence(self.index, words, results, self.match.top))

    def shows(self, product_id: str, max_price: float | None = None) -> bool:
        """Whether the display policy lets a recommendation show this product (and it is within the budget)."""
        price = self._shown.get(product_id)
        return price is not None and (max_price is None or price <= max_price)

    def recommend(self, customer_id: str | None, k: int, max_price: float | None) -> Found:
        """The recommender's picks for this shopper under the display policy, each with its reason; without a
        fitted recommender (or for a shopper it does not know): the categories they buy most, then popular picks."""
        if self.recommender is not None and customer_id is not None and self.recommender.knows(customer_id):
            picks = self.recommender.recommend(customer_id, 3 * k, lambda pid: self.shows(pid, max_price))
            return Found(self.readable(self._recommended(picks), k), "Picked for you from your own shopping.")
        profile = self._profile(customer_id)
        filters: dict[str, Any] = dict(IN_STOCK)
        if max_price is not None:
            filters["max_price"] = max_price
        if profile is not None and profile.category_affinity:
            top = sorted(profile.category_affinity, key=profile.category_affinity.get, reverse=True)[:3]
            response = self.index.search("", {**filters, "categories": top}, k=4 * k, customer=profile)
            cards = [c for c in cards_of(response.results) if self.shows(c.product_id, max_price)]
            if cards:
                return Found(self.readable(cards, k), "Based on the categories you buy most.")
        found = self.index.search("", filters, k=4 * k).results
        cards = [c for c in cards_of(found) if self.shows(c.product_id, max_price)]
        return Found(self.readable(cards, k), "Popular picks in the shop.")

    def _recommended(self, picks: list[Recommendation]) -> list[ProductCard]:
        """Cards for the recommender's picks, in its order, each with its reason as the shopper reads it."""
        rows = {c.product_id: c for c in self.details([p.item for p in picks])}
        others = [p.reason.with_item for p in picks if p.reason.with_item]
        titles = {c.product_id: c.title for c in self.details(others)} if others else {}
        cards = []
        for pick in picks:
            if (card := rows.get(pick.item)) is None:
                continue
            reason = Reason(kind=REASON_KINDS[pick.reason.kind], text=pick.reason.text(titles), score=pick.score)
            cards.append(card.model_copy(update={"reasons": [reason]}))
        return cards

    def similar(self, product_id: str, k: int) -> Found:
        return Found(self.readable(cards_of(similar_items(self.index, product_id, 2 * k, IN_STOCK)), k))

    def bought_together(self, product_id: str, k: int) -> Found:
        con = self.reader.cursor()
        rows = bought_together(con, product_id, k=k, min_support=2)
        cards = [
            ProductCard(product_id=r.product_id, title=r.title, price=r.price, reasons=[together(r.support)])
            for r in rows
            if r.title
        ]
        return Found(self.readable(cards, k), "" if cards else "Not enough baskets to say.")

    def details(self, product_ids: list[str]) -> list[ProductCard]:
        """The products asked for, each under its display title (none merged: a comparison names every one)."""
        rows = self._rows("title, price, department, category, brand, package_size, product_type", product_ids)
        found = {r[0]: r for r in rows}
        cards = []
        for pid in (p for p in product_ids if p in found):
            _, title, price, dept, cat, brand, size, ptype = found[pid]
            facts = ", ".join(x for x in ("store brand" if is_store_brand(brand) else "", size, cat) if x)
            cards.append(
                ProductCard(product_id=pid, title=display_title(ptype, cat, size, brand, title), price=price,
                            department=dept, category=cat, brand=brand, size=size,
                            reasons=[Reason(kind="facts", text=facts)] if facts else [])
            )  # fmt: skip
        return cards

    def taste(self, customer_id: str) -> ShopperTaste | None:
        profile = self._profile(customer_id)
        if profile is None or not profile.lines:
            return None
        top = sorted(profile.category_affinity, key=profile.category_affinity.get, reverse=True)[:3]
        return ShopperTaste(top, profile.private_label_share, (profile.price_p25, profile.price_p75))

    def vocabulary(self) -> frozenset[str]:
        return self._lexicon.vocabulary

    def lexicon(self) -> Lexicon:
        return self._lexicon

    def related(self, phrase: str, k: int = 4) -> list[str]:
        """The catalogue's product types closest in meaning to ``phrase`` (a need the curated map lacks)."""
        if self._type_vectors is None:
            names = [t for t in self._lexicon.types if len(t) > 3]
            self._type_vectors = (names, self.index.embedder.encode(names))
        names, vectors = self._type_vectors
        scores = vectors @ self.index.encode(phrase)
        said = set(re.findall(r"[a-z]+", phrase.lower()))
        out: list[str] = []
        for i in scores.argsort()[::-1][: 6 * k]:  # "cold and flu: cough drops" -> "cough drops"
            short = re.split(r"[:/]", names[i])[-1].strip() or names[i]
            words = set(re.findall(r"[a-z]+", short))
            if scores[i] < RELATED_MIN_COSINE or not words - said or short in out:
                continue  # too far in meaning, or only the shopper's own word back ("dry" for "dry skin")
            out.append(short)
        return out[:k]

    def brands(self) -> list[str]:
        return self._brands


ORDERS_SQL = """
SELECT o.order_id, o.ordered_at, o.status, count(i.line_no), coalesce(round(sum(i.amount), 2), 0)
FROM orders o LEFT JOIN order_items i USING (order_id) WHERE o.customer_id = ? {where}
GROUP BY ALL ORDER BY o.ordered_at DESC LIMIT ?
"""


OFFERS_SQL = """
SELECT d.campaign_id, d.end_date, count(DISTINCT c.coupon_upc),
       count(DISTINCT c.product_id) FILTER (WHERE list_contains($prefer::VARCHAR[], c.product_id)) AS preferred
FROM campaign_members m JOIN campaigns d USING (campaign_id) LEFT JOIN coupons c USING (campaign_id)
WHERE m.customer_id = $customer GROUP BY ALL
ORDER BY preferred DESC, d.end_date DESC NULLS LAST, d.campaign_id LIMIT $limit
"""


# what a customer buys in the most orders, sellable products only (no coupon, fuel or kiosk lines)
USUAL_SQL = """
SELECT i.product_id, count(DISTINCT o.order_id) AS n
FROM orders o JOIN order_items i USING (order_id) JOIN products p USING (product_id)
WHERE o.customer_id = ? AND p.price IS NOT NULL AND p.in_stock
  AND coalesce(p.department, '') NOT IN ('MISC. TRANS.', 'KIOSK-GAS', 'COUPON', 'MISC SALES TRAN')
  AND coalesce(p.category, '') NOT LIKE 'COUPON%'
GROUP BY 1 ORDER BY n DESC, i.product_id LIMIT ?
"""


class StoreOrders:
    def __init__(self, store_path: Path, reader: StoreReader | None = None) -> None:
        self.store_path = store_path
        self.reader = reader or StoreReader(store_path)

    def recent(self, customer_id: str, limit: int) -> list[Order]:
        con = self.reader.cursor()
        rows = con.execute(ORDERS_SQL.format(where=""), [customer_id, limit]).fetchall()
        return [Order(oid, ts, status, n, total) for oid, ts, status, n, total in rows]

    def order(self, customer_id: str, order_id: str) -> Order | None:
        con = self.reader.cursor()
        row = con.execute(ORDERS_SQL.format(where="AND o.order_id = ?"), [customer_id, order_id, 1]).fetchone()
        if row is None:
            return None
        lines = con.execute(
            """SELECT i.product_id, coalesce(p.title, i.product_id), i.quantity, i.amount FROM order_items i
               LEFT JOIN products p USING (product_id) WHERE i.order_id = ? ORDER BY i.line_no""",
            [order_id],
        ).fetchall()
        return Order(*row, lines=[OrderLine(pid, plain(title) or pid, qty, amt) for pid, title, qty, amt in lines])

    def usual(self, customer_id: str, k: int) -> list[tuple[str, int]]:
        rows = self.reader.cursor().execute(USUAL_SQL, [customer_id, k]).fetchall()
        return [(pid, int(n)) for pid, n in rows]

    def busiest_customers(self, n: int) -> list[str]:
        """The customers with the most orders (the demo mode's customer picker lists them)."""
        con = self.reader.cursor()
        rows = con.execute(
            "SELECT customer_id FROM orders GROUP BY 1 ORDER BY count(*) DESC, customer_id LIMIT ?", [n]
        ).fetchall()
        return [r[0] for r in rows]

    def coupon_for(self, customer_id: str, product_ids: list[str]) -> Coupon | None:
        con = self.reader.cursor()
        found = find_coupon(con, customer_id, product_ids)
        return Coupon(found["coupon_upc"], found["campaign_id"], found["product_id"]) if found else None

    def offers(self, customer_id: str, limit: int, prefer: list[str] | None = None) -> list[Offer]:
        """The campaigns that target this customer: those with a coupon for a ``prefer`` product (the
        recommender's picks) first, then the latest ending."""
        con = self.reader.cursor()
        rows = con.execute(OFFERS_SQL, {"customer": customer_id, "limit": limit, "prefer": list(prefer or [])})
        return [Offer(campaign_id, ends, coupons) for campaign_id, ends, coupons, _ in rows.fetchall()]
