"""Where the hub's conversations live, behind one interface with two backends: this process's memory
(``MemoryState``, the default: one `kefu serve`) and Redis (``ui/state_redis.py``, ``KEFU_STATE_URL``: several
workers behind a load balancer act as one).

Either holds each conversation by id with an idle expiry (guests and signed-in customers in separate, separately
capped spaces, so a flood of guest conversations cannot evict a customer's), a lease per conversation so its turns
run one at a time across every worker (a second turn is refused, ``ConversationBusy``, never queued behind the
first), and the messages support agents send into it. A turn holds its lease ``lease_s`` at a time, renewed by a
heartbeat while it runs: a worker that dies mid-turn frees the conversation within ``lease_s``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from cachetools import TTLCache
from pydantic import BaseModel, Field, TypeAdapter

from assistant.events import Event, TurnDone
from assistant.session import Session
from kefu.errors import ConversationBusy

BUSY = "This conversation is still answering its previous message; wait for that reply, then send again."


class AgentMessage(BaseModel, frozen=True):
    text: str
    agent: str
    at: float = Field(default_factory=time.time)


@dataclass
class Conversation:
    session: Session
    started: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.time)
    turns: list[list[Event]] = field(default_factory=list)  # each turn's events, in order
    messages: list[tuple[str, str]] = field(default_factory=list)  # (role, text) as the shopper saw them
    agent_messages: list[AgentMessage] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.session.conversation_id

    @property
    def customer_id(self) -> str | None:
        return self.session.customer_id

    def last_done(self) -> TurnDone | None:
        for events in reversed(self.turns):
            for event in events:
                if isinstance(event, TurnDone):
                    return event
        return None


class ConversationRecord(BaseModel):
    """A conversation's own state as the shared store keeps it (typed JSON; its turns and messages are lists
    beside it, so an agent's message never waits for a turn)."""

    session: Session
    started: float
    last_active: float


TURN = TypeAdapter(list[Annotated[Event, Field(discriminator="kind")]])
MESSAGE = TypeAdapter(tuple[str, str])


@dataclass(frozen=True)
class Lease:
    conversation_id: str
    token: str = field(default_factory=lambda: secrets.token_hex(8))


class ConversationState(Protocol):
    """What the hub needs of a store. ``StateError`` when a shared store is not answering."""

    lease_s: float

    def load(self, conversation_id: str) -> Conversation | None: ...

    def create(self, conversation: Conversation) -> None: ...

    def touch(self, conversation: Conversation) -> None: ...

    def save_turn(self, conversation: Conversation, events: list[Event], messages: list[tuple[str, str]]) -> None:
        """After a turn: the session as it now stands, the turn's events and its messages, at once."""

    def live_ids(self) -> list[str]:
        """Live conversations' ids, most recently active first."""

    def acquire(self, conversation_id: str) -> Lease:
        """The conversation's lease, or ``ConversationBusy`` while another turn holds it."""

    def busy(self, conversation_id: str) -> bool:
        """Whether a turn holds the conversation's lease now."""

    def renew(self, lease: Lease) -> bool: ...

    def release(self, lease: Lease) -> None: ...

    def say(self, conversation_id: str, message: AgentMessage) -> None:
        """Append an agent's message; ``KeyError`` when the conversation is not live."""

    def agent_messages(self, conversation_id: str, seen: int) -> list[AgentMessage]: ...


class MemoryState:
    """This process's conversations: the objects themselves (a turn's events show as they happen)."""

    def __init__(self, *, idle_s: float = 3600, max_guests: int = 5000, max_customers: int = 5000,
                 lease_s: float = 30.0) -> None:  # fmt: skip
        self._guests: TTLCache[str, Conversation] = TTLCache(max_guests, idle_s)
        self._customers: TTLCache[str, Conversation] = TTLCache(max_customers, idle_s)
        self._leases: dict[str, tuple[str, float]] = {}  # conversation id -> (token, expires at)
        self._lock = threading.Lock()
        self.lease_s = lease_s

    def _cache(self, customer_id: str | None) -> TTLCache[str, Conversation]:
        return self._customers if customer_id else self._guests

    def load(self, conversation_id: str) -> Conversation | None:
        with self._lock:
            return self._customers.get(conversation_id) or self._guests.get(conversation_id)

    def create(self, conversation: Conversation) -> None:
        self.touch(conversation)

    def touch(self, conversation: Conversation) -> None:
        with self._lock:  # (re)inserting restarts its idle clock
            self._cache(conversation.customer_id)[conversation.id] = conversation

    def save_turn(self, conversation: Conversation, events: list[Event], messages: list[tuple[str, str]]) -> None:
        self.touch(conversation)  # the objects were updated in place as the turn ran

    def live_ids(self) -> list[str]:
        with self._lock:
            items = list(self._customers.values()) + list(self._guests.values())
        return [c.id for c in sorted(items, key=lambda c: c.last_active, reverse=True)]

    def live(self) -> list[Conversation]:
        with self._lock:
            items = list(self._customers.values()) + list(self._guests.values())
        return sorted(items, key=lambda c: c.last_active, reverse=True)

    def acquire(self, conversation_id: str) -> Lease:
        lease, now = Lease(conversation_id), time.monotonic()
        with self._lock:
            held = self._leases.get(conversation_id)
            if held is not None and held[1] > now:
                raise ConversationBusy(BUSY)
            self._leases[conversation_id] = (lease.token, now + self.lease_s)
        return lease

    def busy(self, conversation_id: str) -> bool:
        with self._lock:
            held = self._leases.get(conversation_id)
            return held is not None and held[1] > time.monotonic()

    def renew(self, lease: Lease) -> bool:
        with self._lock:
            held = self._leases.get(lease.conversation_id)
            if held is None or held[0] != lease.token:
                return False
            self._leases[lease.conversation_id] = (lease.token, time.monotonic() + self.lease_s)
            return True

    def release(self, lease: Lease) -> None:
        with self._lock:
            held = self._leases.get(lease.conversation_id)
            if held is not None and held[0] == lease.token:
                del self._leases[lease.conversation_id]

    def say(self, conversation_id: str, message: AgentMessage) -> None:
        conversation = self.load(conversation_id)
        if conversation is None:
            raise KeyError(f"no live conversation {conversation_id}")
        conversation.agent_messages.append(message)  # list appends are atomic: no need to wait for a turn
        conversation.messages.append(("agent", message.text))
        self.touch(conversation)

    def agent_messages(self, conversation_id: str, seen: int) -> list[AgentMessage]:
        conversation = self.load(conversation_id)
        return conversation.agent_messages[seen:] if conversation is not None else []


@contextmanager
def heartbeat(state: ConversationState, lease: Lease) -> Iterator[None]:
    """Renew ``lease`` every third of its time while the block runs (a thread that stops with the block)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(state.lease_s / 3):
            try:
                if not state.renew(lease):
                    return
            except Exception:  # the store is down: the lease lapses, the turn finishes regardless
                return

    thread = threading.Thread(target=beat, name=f"lease-{lease.conversation_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
