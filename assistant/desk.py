"""The support agents' desk: what the copilot page shows, as typed values, from the running server's live
conversations, the conversation log, the case book and the shop's services.

- ``conversations``: one page of the logged conversations (searchable by customer, outcome, thumbs-down,
  unread, "mine" or words; paged in SQL), each marked live when the hub holds it;
- ``timeline``: the per-turn view (``assistant/timeline.py``), live events when the conversation is live;
- ``customer``: the customer card (fitted profile, last orders);
- ``suggestions``: replies built from the last turn's evidence (``assistant/suggest.py``), looked up here;
- ``queue`` / ``take`` / ``assign`` / ``close``: the unclosed handoff cases by priority and waiting time,
  taking or assigning one, and closing it with a note.

Any part may be missing (no assistant, no records yet, no fitted profiles): each method then says what to run
in a ``note`` instead of failing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field

from assistant.events import Event, ProductCard
from assistant.factory import load_profiles
from assistant.loop import Assistant
from assistant.services import Coupon, Order, Profiles, Services
from assistant.suggest import AFTER_SALES_INTENTS, Evidence, Suggestion, suggest
from assistant.timeline import CaseView, TurnView, case_view, from_live, from_log
from kefu.errors import KefuError
from kefu.records.cases import CaseBook
from kefu.records.conversations import ConversationLog
from kefu.records.db import Records
from kefu.records.listing import ConversationList, ConversationPage, ConversationQuery, ConversationRow
from kefu.settings import Settings

SHOW: tuple[str, ...] = (
    "all",
    "unread",
    "waiting",
    "mine",
    "handoff",
    "no_match",
    "declined",
    "refused",
    "thumbs_down",
)  # the conversation list's "Show" choices
NO_PROFILES = "No fitted customer profiles; run `kefu segment fit`, then restart `kefu serve`."
NO_RECORDS = "No conversation log yet: it fills as shoppers chat (`kefu serve`, after `kefu index`)."


def list_query(
    show: str = "all", customer: str = "", text: str = "", agent: str = "", page: int = 1
) -> ConversationQuery:
    """The conversation list's query from the copilot's controls: a "Show" choice (``SHOW``), a customer id,
    words to find and the agent's name ("mine")."""
    if show not in SHOW:
        raise KefuError(f"Unknown list filter {show!r}; choose one of: {', '.join(SHOW)}.")
    outcome = show if show in ("handoff", "no_match", "declined", "refused") else None
    return ConversationQuery(
        customer_id=customer.strip() or None,
        text=text.strip() or None,
        outcome=outcome,
        thumbs_down=show == "thumbs_down",
        unread=show == "unread",
        waiting=show == "waiting",
        assigned_to=(agent.strip() or "agent") if show == "mine" else None,
        page=page,
    )


class LiveConversation(Protocol):
    """What the desk reads of a live conversation (``ui/hub.py: Conversation``)."""

    turns: list[list[Event]]
    messages: list[tuple[str, str]]
    last_active: float

    @property
    def id(self) -> str: ...

    @property
    def customer_id(self) -> str | None: ...


@dataclass(frozen=True)
class ConversationItem:
    """One line of the conversation list: the logged conversation, and whether it is live on this server."""

    row: ConversationRow
    live: bool

    @property
    def conversation_id(self) -> str:
        return self.row.conversation_id


class CustomerCard(BaseModel):
    customer_id: str | None
    segment: str | None = None
    persona: str | None = None
    rfm: tuple[int | None, int | None, int | None] | None = None
    clv_expected_value: float | None = None
    clv_expected_purchases: float | None = None
    alive_band: str | None = None
    p_alive: float | None = None
    price_band: str | None = None
    propensity: float | None = None
    top_categories: list[str] = Field(default_factory=list)
    orders: list[dict[str, Any]] = Field(default_factory=list)  # order_id, ordered_at, status, items, total
    notes: list[str] = Field(default_factory=list)  # what is missing and what to run


@dataclass
class Desk:
    services: Services | None
    log: ConversationLog | None
    cases: CaseBook | None
    profiles: Profiles | None = None
    notes: list[str] = field(default_factory=list)  # what is missing, and the command that makes it

    @classmethod
    def open(cls, settings: Settings, assistant: Assistant | None, unavailable: str | None = None) -> Desk:
        """The running assistant's services and records; without one, the records and profiles on disk."""
        if assistant is not None:
            services, log = assistant.services, assistant.log
            cases = services.cases if isinstance(services.cases, CaseBook) else None
            records = log.records if log is not None else cases.records if cases is not None else None
            log = log or (ConversationLog(records) if records is not None else None)
            cases = cases or (CaseBook(records) if records is not None else None)
            desk = cls(services, log, cases, services.profiles)
            desk.notes += [] if log is not None else [NO_RECORDS]
        else:
            reason = unavailable or "it has not been built"
            notes = [f"The assistant is unavailable ({reason}): live conversations and suggestions need it."]
            records, trouble = None, None
            try:
                records = Records.open_existing(settings)
            except KefuError as exc:  # the records server is down or misconfigured: the page says what to do
                trouble = str(exc)
            desk = cls(None, None, None, load_profiles(settings), notes)
            if records is None:
                desk.notes.append(trouble or NO_RECORDS)
            else:
                desk.log, desk.cases = ConversationLog(records), CaseBook(records)
        if desk.profiles is None:
            desk.notes.append(NO_PROFILES)
        return desk

    # -- the conversation list ------------------------------------------------------------------------------
    def conversations(
        self, live_ids: Collection[str], query: ConversationQuery
    ) -> tuple[list[ConversationItem], ConversationPage]:
        """One page of logged conversations (``kefu/records/listing.py``), each marked live when the hub holds it."""
        if self.log is None:
            return [], ConversationPage([], 0, 1, query.per_page, query)
        page = ConversationList(self.log.records).page(query)
        return [ConversationItem(r, r.conversation_id in live_ids) for r in page.rows], page

    def opened(self, conversation_id: str) -> None:
        """An agent opened the conversation: it is read."""
        if self.log is not None:
            self.log.mark_read(conversation_id)

    def replied(self, conversation_id: str) -> None:
        """An agent sent a reply into it: the shopper is no longer waiting."""
        if self.log is not None:
            self.log.mark_replied(conversation_id)

    # -- one conversation -----------------------------------------------------------------------------------
    def timeline(self, conversation_id: str, live: LiveConversation | None = None) -> list[TurnView]:
        if live is not None:
            views = from_live(live.turns, live.messages)
        elif self.log is not None:
            views = [from_log(row, self.log.tool_calls(row["id"])) for row in self.log.turns(conversation_id)]
        else:
            views = []
        ratings = self.log.ratings(conversation_id) if self.log is not None else {}
        for view in views:
            view.rating = ratings.get(view.turn)
            if view.product_ids and not view.cards:
                view.cards = self.cards(view.product_ids)
        return views

    def customer_of(self, conversation_id: str, live: LiveConversation | None = None) -> str | None:
        if live is not None:
            return live.customer_id
        rows = self.log.turns(conversation_id) if self.log is not None else []
        return next((r["customer_id"] for r in rows if r["customer_id"]), None)

    def customer(self, customer_id: str | None, orders: int = 3) -> CustomerCard:
        card = CustomerCard(customer_id=customer_id)
        if customer_id is None:
            card.notes.append("A guest (not signed in): no profile and no orders.")
            return card
        profiles = self.profiles
        if profiles is None:
            card.notes.append(NO_PROFILES)
        else:
            try:
                p = profiles.get(customer_id).model_dump()
            except (KefuError, KeyError) as exc:
                card.notes.append(str(exc).strip("'\""))
            else:
                keys = ("segment", "persona", "clv_expected_value", "clv_expected_purchases", "p_alive",
                        "alive_band", "price_band", "propensity")  # fmt: skip
                card = card.model_copy(update={k: p.get(k) for k in keys})
                card.rfm = (p.get("r"), p.get("f"), p.get("m"))
                card.top_categories = list(p.get("top_categories") or [])
        if self.services is not None:
            try:
                card.orders = [_order_row(o) for o in self.services.orders.recent(customer_id, orders)]
            except KefuError as exc:
                card.notes.append(str(exc))
        return card

    def cards(self, product_ids: list[str]) -> list[ProductCard]:
        """Catalogue rows of these products, in their order (none without a catalogue)."""
        if not product_ids or self.services is None:
            return []
        try:
            return self.services.catalogue.details(product_ids)
        except KefuError:
            return []

    def last_cards(self, turns: list[TurnView]) -> list[ProductCard]:
        """The products of the last turn that showed any, as catalogue rows."""
        for t in reversed(turns):
            if t.cards or t.product_ids:
                return list(t.cards) or self.cards(t.product_ids)
        return []

    def open_case(self, conversation_id: str) -> str | None:
        if self.cases is None:
            return None
        row = self.cases.latest_for(conversation_id)
        return row["case_id"] if row else None

    def evidence(self, conversation_id: str, turns: list[TurnView], customer_id: str | None, agent: str) -> Evidence:
        last = turns[-1] if turns else None
        cards = self.last_cards(turns)
        order, latest, coupon = None, False, None
        if self.services is not None and customer_id is not None and last is not None:
            orders = self.services.orders
            try:
                if (order_id := last.order_id()) is not None:
                    order = orders.order(customer_id, order_id)
                if order is None and (last.intent in AFTER_SALES_INTENTS or last.outcome == "handoff"):
                    recent = orders.recent(customer_id, 1)
                    order, latest = (recent[0], True) if recent else (None, False)
                shown = next((t.coupon for t in reversed(turns) if t.coupon), None)
                if shown:
                    coupon = Coupon(shown["coupon_upc"], shown["campaign_id"], shown["product_id"])
                elif cards:
                    coupon = orders.coupon_for(customer_id, [c.product_id for c in cards])
            except KefuError:
                pass  # the store is unreadable: suggestions without its facts
        case_id = (last.handoff_case if last else None) or self.open_case(conversation_id)
        return Evidence(last, cards, order, latest, coupon, case_id, agent or "the support team")

    def suggestions(self, conversation_id: str, turns: list[TurnView], customer_id: str | None,
                    agent: str = "") -> tuple[list[Suggestion], list[ProductCard]]:  # fmt: skip
        """Suggested replies and the products an agent may insert: the last ones shown, else the recommender's
        picks for this customer under the shop's display policy."""
        e = self.evidence(conversation_id, turns, customer_id, agent)
        return suggest(e), e.cards or self.picks(customer_id)

    def picks(self, customer_id: str | None, k: int = 4) -> list[ProductCard]:
        """The catalogue's recommendations for this customer (none without a customer or a catalogue)."""
        if customer_id is None or self.services is None:
            return []
        try:
            return self.services.catalogue.recommend(customer_id, k, None).products
        except KefuError:
            return []

    # -- the handoff queue ----------------------------------------------------------------------------------
    def queue(self, assigned_to: str | None = None) -> list[CaseView]:
        """Unclosed cases (only ``assigned_to``'s when given), by priority then the longest-waiting shopper."""
        if self.cases is None:
            return []
        return [case_view(r) for r in self.cases.queue(assigned_to)]

    def _book(self) -> CaseBook:
        if self.cases is None:
            raise KefuError(NO_RECORDS)
        return self.cases

    def case(self, case_id: str) -> CaseView:
        return case_view(self._book().case(case_id))

    def take(self, case_id: str, agent: str) -> CaseView:
        return case_view(self._book().take(case_id, agent))

    def assign(self, case_id: str, agent: str) -> CaseView:
        return case_view(self._book().assign(case_id, agent))

    def close(self, case_id: str, agent: str, note: str) -> CaseView:
        return case_view(self._book().close(case_id, agent, note))

    def titles(self, product_ids: list[str]) -> dict[str, str]:
        """product_id -> display title, for the queue's items shown (empty without a catalogue)."""
        return {c.product_id: c.title for c in self.cards(product_ids)}


def _order_row(o: Order) -> dict[str, Any]:
    day = o.ordered_at.strftime("%Y-%m-%d") if o.ordered_at else ""
    return {"order_id": o.order_id, "ordered_at": day, "status": o.status, "items": o.items, "total": o.total}
