"""The conversation hub: every live conversation, shared by the chat page, the API and the copilot. It holds
each conversation's Session, runs its turns one at a time (a lease: a second turn meanwhile is refused with
``ConversationBusy``, the API's 409, instead of waiting), records the typed events of its turns (the copilot's
live timeline) and the messages support agents send into it (the shopper's page polls them).

Where they live is ``ui/state.py``: this process's memory by default, Redis with ``KEFU_STATE_URL`` (several
workers behind a load balancer then share every conversation: a turn may run on any of them). Conversations
expire after ``idle_s`` without a turn; guests and signed-in customers live in separate, separately capped
spaces, so a flood of new guest conversations cannot evict a signed-in customer's session (a pending return
included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from assistant.actions import Action, label
from assistant.events import Event, TurnDone
from assistant.loop import Assistant
from assistant.session import Session
from kefu.settings import Settings
from ui.state import AgentMessage, Conversation, ConversationState, Lease, MemoryState, heartbeat

__all__ = ["AgentMessage", "Conversation", "Hub"]
log = logging.getLogger(__name__)


class Hub:
    def __init__(self, *, idle_s: float = 3600, max_guests: int = 5000, max_customers: int = 5000,
                 state: ConversationState | None = None) -> None:  # fmt: skip
        self.state = state or MemoryState(idle_s=idle_s, max_guests=max_guests, max_customers=max_customers)

    @classmethod
    def from_settings(cls, settings: Settings) -> Hub:
        """In this process, or in Redis when ``KEFU_STATE_URL`` is set."""
        if settings.state_url is None:
            return cls(state=MemoryState(idle_s=settings.conversation_idle_s, lease_s=settings.state_lease_s))
        from ui.state_redis import RedisState

        state = RedisState(settings.state_url, idle_s=settings.conversation_idle_s, lease_s=settings.state_lease_s)
        return cls(state=state)

    def open(self, conversation_id: str | None, customer_id: str | None) -> Conversation:
        """The live conversation with this id when it belongs to this customer, else a new one."""
        conversation = self.state.load(conversation_id) if conversation_id else None
        if conversation is None or conversation.customer_id != customer_id:
            conversation = Conversation(Session(customer_id=customer_id))
            self.state.create(conversation)
        else:
            self.state.touch(conversation)  # restarts its idle clock
        return conversation

    def get(self, conversation_id: str) -> Conversation | None:
        return self.state.load(conversation_id)

    def live_ids(self) -> list[str]:
        """Live conversations' ids, most recently active first."""
        return self.state.live_ids()

    def live(self) -> list[Conversation]:
        """Live conversations, most recently active first."""
        return [c for c in map(self.state.load, self.state.live_ids()) if c is not None]

    def turn(
        self, assistant: Assistant, conversation: Conversation, message: str, action: Action | None = None
    ) -> Iterator[Event]:
        """Run one turn of ``conversation``, recording its events. With a typed ``action`` (a card button, a chip)
        the history shows ``message`` or else the action's short label. The lease is taken here, before the
        first event: ``ConversationBusy`` while another turn of it runs anywhere (``StateError``: the shared store
        is down). The turn runs on the conversation as last saved, whichever worker saved it."""
        lease = self.state.acquire(conversation.id)
        try:
            current = self.state.load(conversation.id)
        except BaseException:
            self.state.release(lease)
            raise
        if current is not None and current is not conversation:  # the caller's copy catches up, then runs it
            conversation.__dict__.update(current.__dict__)
        return self._run(lease, assistant, conversation, message, action)

    def _run(self, lease: Lease, assistant: Assistant, conversation: Conversation, message: str,
             action: Action | None) -> Iterator[Event]:  # fmt: skip
        events: list[Event] = []
        said: list[tuple[str, str]] = []
        try:
            with heartbeat(self.state, lease):
                conversation.turns.append(events)
                if action is not None:
                    message = message.strip() or label(action, conversation.session.seen)
                said.append(("user", message))
                conversation.messages.append(said[-1])
                conversation.last_active = time.time()
                for event in assistant.turn(conversation.session, message, action):
                    events.append(event)
                    if isinstance(event, TurnDone):
                        said.append(("assistant", event.reply))
                        conversation.messages.append(said[-1])
                    yield event
                conversation.last_active = time.time()
                self.state.save_turn(conversation, events, said)
        finally:
            try:
                self.state.release(lease)
            except Exception as exc:  # the store went down mid-turn: the lease lapses by itself
                log.warning("could not release the lease of %s: %s", conversation.id, exc)

    def busy(self, conversation_id: str) -> bool:
        """Whether a turn of the conversation is running now (on any worker)."""
        return self.state.busy(conversation_id)

    def touch(self, conversation: Conversation) -> None:
        self.state.touch(conversation)

    def say(self, conversation_id: str, text: str, agent: str = "agent") -> AgentMessage:
        """A support agent's message into a live conversation; the shopper's page shows it on its next poll.
        ``KeyError`` when it is not live."""
        message = AgentMessage(text=text.strip(), agent=agent)
        self.state.say(conversation_id, message)
        return message

    def agent_messages_since(self, conversation_id: str, seen: int) -> list[AgentMessage]:
        return self.state.agent_messages(conversation_id, seen)
