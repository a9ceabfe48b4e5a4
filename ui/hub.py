"""The conversation hub: every live conversation of this server process, shared by the chat page, the API and
the copilot. It holds each conversation's Session, a lock so its turns run one at a time, the typed events of its
turns (the copilot's live timeline) and the messages support agents send into it (the shopper's page polls them).

Conversations expire after ``idle_s`` without a turn. Guests and signed-in customers live in separate bounded
caches, so a flood of new guest conversations cannot evict a signed-in customer's session (a pending return
included).

One process only: on several processes the hub's state would sit in a shared store (Redis or Postgres: sessions
by conversation id, agent messages as a per-conversation list or pub/sub channel), with the per-session lock
becoming a lease on the conversation key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from cachetools import TTLCache

from assistant.actions import Action, label
from assistant.events import Event, TurnDone
from assistant.loop import Assistant
from assistant.session import Session


@dataclass(frozen=True)
class AgentMessage:
    text: str
    agent: str
    at: float = field(default_factory=time.time)


@dataclass
class Conversation:
    session: Session
    started: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.time)
    turns: list[list[Event]] = field(default_factory=list)  # each turn's events, in order
    messages: list[tuple[str, str]] = field(default_factory=list)  # (role, text) as the shopper saw them
    agent_messages: list[AgentMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

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


class Hub:
    def __init__(self, *, idle_s: float = 3600, max_guests: int = 5000, max_customers: int = 5000) -> None:
        self._guests: TTLCache[str, Conversation] = TTLCache(max_guests, idle_s)
        self._customers: TTLCache[str, Conversation] = TTLCache(max_customers, idle_s)
        self._lock = threading.Lock()

    def _cache(self, customer_id: str | None) -> TTLCache[str, Conversation]:
        return self._customers if customer_id else self._guests

    def open(self, conversation_id: str | None, customer_id: str | None) -> Conversation:
        """The live conversation with this id when it belongs to this customer, else a new one."""
        with self._lock:
            cache = self._cache(customer_id)
            conversation = cache.get(conversation_id) if conversation_id else None
            if conversation is None or conversation.customer_id != customer_id:
                conversation = Conversation(Session(customer_id=customer_id))
            cache[conversation.id] = conversation  # (re)inserting restarts its idle clock
            return conversation

    def get(self, conversation_id: str) -> Conversation | None:
        with self._lock:
            return self._customers.get(conversation_id) or self._guests.get(conversation_id)

    def live(self) -> list[Conversation]:
        """Live conversations, most recently active first."""
        with self._lock:
            items = list(self._customers.values()) + list(self._guests.values())
        return sorted(items, key=lambda c: c.last_active, reverse=True)

    def turn(
        self, assistant: Assistant, conversation: Conversation, message: str, action: Action | None = None
    ) -> Iterator[Event]:
        """Run one turn of ``conversation`` (one at a time per conversation), recording its events. With a typed
        ``action`` (a card button, a chip) the history shows ``message`` or else the action's short label."""
        with conversation.lock:
            events: list[Event] = []
            conversation.turns.append(events)
            if action is not None:
                message = message.strip() or label(action, conversation.session.seen)
            conversation.messages.append(("user", message))
            conversation.last_active = time.time()
            try:
                for event in assistant.turn(conversation.session, message, action):
                    events.append(event)
                    if isinstance(event, TurnDone):
                        conversation.messages.append(("assistant", event.reply))
                    yield event
            finally:
                conversation.last_active = time.time()
                self.touch(conversation)

    def touch(self, conversation: Conversation) -> None:
        with self._lock:
            self._cache(conversation.customer_id)[conversation.id] = conversation

    def say(self, conversation_id: str, text: str, agent: str = "agent") -> AgentMessage:
        """A support agent's message into a live conversation; the shopper's page shows it on its next poll."""
        conversation = self.get(conversation_id)
        if conversation is None:
            raise KeyError(f"no live conversation {conversation_id}")
        message = AgentMessage(text=text.strip(), agent=agent)
        conversation.agent_messages.append(message)  # list appends are atomic: no need to wait for a turn
        conversation.messages.append(("agent", message.text))
        self.touch(conversation)
        return message

    def agent_messages_since(self, conversation_id: str, seen: int) -> list[AgentMessage]:
        conversation = self.get(conversation_id)
        return conversation.agent_messages[seen:] if conversation is not None else []
