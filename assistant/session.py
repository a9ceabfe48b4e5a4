"""Per-session state and the typed dependencies object tools receive. No globals: each conversation has its
own Session; the shared services (``assistant/services.py``) are read-only or thread-safe."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from assistant.events import ProductCard
from assistant.services import Services
from assistant.understanding import Slots


@dataclass
class PendingReturn:
    order_id: str
    product_id: str | None
    reason: str
    asked_turn: int


@dataclass
class Session:
    customer_id: str | None  # from the session's authentication, never from model output; None = guest
    conversation_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    turn: int = 0
    slots: Slots | None = None
    candidates: list[ProductCard] = field(default_factory=list)  # the last results, for "the second one"
    seen: dict[str, ProductCard] = field(default_factory=dict)  # every product a tool returned this session
    pending_return: PendingReturn | None = None
    history: list[dict[str, str]] = field(default_factory=list)  # recent user/assistant messages
    tried: list[str] = field(default_factory=list)  # tool calls so far, for handoff summaries
    intents: list[str] = field(default_factory=list)
    goals: list[str] = field(default_factory=list)  # the conversation's goal at each turn (understanding/goal.py)

    def remember(self, cards: list[ProductCard]) -> None:
        if cards:
            self.candidates = list(cards)
        for card in cards:
            self.seen[card.product_id] = card

    def resolve_refs(self, refs: list[int]) -> list[ProductCard]:
        """Positions as the shopper said them (1-based, -1 = last) into the last shown products."""
        out = []
        for ref in refs:
            index = len(self.candidates) - 1 if ref == -1 else ref - 1
            if 0 <= index < len(self.candidates):
                out.append(self.candidates[index])
        return out


class Deps:
    """What a tool may use: the shared services and this session. The customer id comes from here only.
    (A plain class, not a dataclass: the tool schemas check it by isinstance and never look inside.)"""

    __slots__ = ("services", "session")

    def __init__(self, services: Services, session: Session) -> None:
        self.services, self.session = services, session

    @property
    def customer_id(self) -> str | None:
        return self.session.customer_id
