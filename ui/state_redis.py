"""The hub's conversations in Redis (``KEFU_STATE_URL``), shared by every `kefu serve` worker.

Keys, per space (``guest`` or ``customer``: separate key spaces with separate caps), all expiring ``idle_s``
after the conversation's last turn or message:

- ``kefu:{space}:conv:{id}``: the conversation's record (``ConversationRecord``: the session, typed JSON);
- ``kefu:{space}:turns:{id}``, ``…:messages:{id}``, ``…:agents:{id}``: lists of each turn's events, the
  messages as the shopper saw them, and the agents' messages (appended by any worker, without a lease);
- ``kefu:{space}:live``: a sorted set of live ids by last activity (the copilot's live marks; the cap's order);
- ``kefu:lease:{id}``: the turn lease, ``SET NX PX`` with a random token, renewed and released only by its holder.

A turn's results are written in one transaction at its end, so another worker sees a conversation either before
or after a turn, never half-way; a worker that dies mid-turn loses that turn only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from assistant.events import Event
from kefu.errors import ConversationBusy
from kefu.state_store import connect, unavailable
from ui.state import BUSY, MESSAGE, TURN, AgentMessage, Conversation, ConversationRecord, Lease

T = TypeVar("T")
SPACES = ("customer", "guest")
RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def space_of(customer_id: str | None) -> str:
    return "customer" if customer_id else "guest"


class RedisState:
    def __init__(self, url: str, *, idle_s: float = 3600, max_guests: int = 5000, max_customers: int = 5000,
                 lease_s: float = 30.0) -> None:  # fmt: skip
        self.url, self.idle_s, self.lease_s = url, idle_s, lease_s
        self.caps = {"guest": max_guests, "customer": max_customers}
        self.redis = connect(url)
        self._renew = self.redis.register_script(RENEW)
        self._release = self.redis.register_script(RELEASE)

    def _call(self, work: Callable[[], T]) -> T:
        import redis

        try:
            return work()
        except redis.RedisError as exc:
            raise unavailable(self.url, exc) from None

    @staticmethod
    def _key(space: str, kind: str, conversation_id: str) -> str:
        return f"kefu:{space}:{kind}:{conversation_id}"

    def _keys(self, space: str, conversation_id: str) -> list[str]:
        return [self._key(space, kind, conversation_id) for kind in ("conv", "turns", "messages", "agents")]

    def _space(self, conversation_id: str) -> str | None:
        found = self.redis.exists(self._key("customer", "conv", conversation_id))
        if found:
            return "customer"
        return "guest" if self.redis.exists(self._key("guest", "conv", conversation_id)) else None

    def load(self, conversation_id: str) -> Conversation | None:
        def work() -> Conversation | None:
            for space in SPACES:
                record, turns, messages, agents = self._read(space, conversation_id)
                if record is not None:
                    stored = ConversationRecord.model_validate_json(record)
                    return Conversation(
                        stored.session, stored.started, stored.last_active,
                        turns=[TURN.validate_json(t) for t in turns],
                        messages=[MESSAGE.validate_json(m) for m in messages],
                        agent_messages=[AgentMessage.model_validate_json(a) for a in agents],
                    )  # fmt: skip
            return None

        return self._call(work)

    def _read(self, space: str, conversation_id: str) -> list:
        conv, turns, messages, agents = self._keys(space, conversation_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(conv).lrange(turns, 0, -1).lrange(messages, 0, -1).lrange(agents, 0, -1)
        return pipe.execute()

    def _record(self, conversation: Conversation) -> str:
        record = ConversationRecord(session=conversation.session, started=conversation.started,
                                    last_active=conversation.last_active)  # fmt: skip
        return record.model_dump_json()

    def create(self, conversation: Conversation) -> None:
        space = space_of(conversation.customer_id)
        ttl_ms = int(self.idle_s * 1000)

        def work() -> None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self._key(space, "conv", conversation.id), self._record(conversation), px=ttl_ms, nx=True)
            pipe.zadd(f"kefu:{space}:live", {conversation.id: conversation.last_active})
            pipe.zremrangebyscore(f"kefu:{space}:live", "-inf", time.time() - self.idle_s)
            pipe.zcard(f"kefu:{space}:live")
            *_, count = pipe.execute()
            if count > self.caps[space]:  # the cap: the least recently active conversations of this space go
                for gone, _ in self.redis.zpopmin(f"kefu:{space}:live", count - self.caps[space]):
                    self.redis.delete(*self._keys(space, gone))

        self._call(work)

    def touch(self, conversation: Conversation) -> None:
        conversation.last_active = time.time()
        self._call(lambda: self._expire(self.redis.pipeline(transaction=True), conversation).execute())

    def _expire(self, pipe, conversation: Conversation):
        space, ttl_ms = space_of(conversation.customer_id), int(self.idle_s * 1000)
        for key in self._keys(space, conversation.id):
            pipe.pexpire(key, ttl_ms)
        pipe.zadd(f"kefu:{space}:live", {conversation.id: conversation.last_active})
        return pipe

    def save_turn(self, conversation: Conversation, events: list[Event], messages: list[tuple[str, str]]) -> None:
        space = space_of(conversation.customer_id)
        conv, turns, listed, _ = self._keys(space, conversation.id)
        ttl_ms = int(self.idle_s * 1000)

        def work() -> None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(conv, self._record(conversation), px=ttl_ms)
            pipe.rpush(turns, TURN.dump_json(events).decode())
            if messages:
                pipe.rpush(listed, *(MESSAGE.dump_json(m).decode() for m in messages))
            self._expire(pipe, conversation).execute()

        self._call(work)

    def live_ids(self) -> list[str]:
        def work() -> list[str]:
            since = time.time() - self.idle_s
            scored = []
            for space in SPACES:
                scored += self.redis.zrangebyscore(f"kefu:{space}:live", since, "+inf", withscores=True)
            return [i for i, _ in sorted(scored, key=lambda item: item[1], reverse=True)]

        return self._call(work)

    def acquire(self, conversation_id: str) -> Lease:
        lease = Lease(conversation_id)
        key = f"kefu:lease:{conversation_id}"
        if not self._call(lambda: self.redis.set(key, lease.token, nx=True, px=int(self.lease_s * 1000))):
            raise ConversationBusy(BUSY)
        return lease

    def busy(self, conversation_id: str) -> bool:
        return bool(self._call(lambda: self.redis.exists(f"kefu:lease:{conversation_id}")))

    def renew(self, lease: Lease) -> bool:
        key, ms = f"kefu:lease:{lease.conversation_id}", int(self.lease_s * 1000)
        return bool(self._call(lambda: self._renew(keys=[key], args=[lease.token, ms])))

    def release(self, lease: Lease) -> None:
        self._call(lambda: self._release(keys=[f"kefu:lease:{lease.conversation_id}"], args=[lease.token]))

    def say(self, conversation_id: str, message: AgentMessage) -> None:
        def work() -> None:
            space = self._space(conversation_id)
            if space is None:
                raise KeyError(f"no live conversation {conversation_id}")
            _, _, messages, agents = self._keys(space, conversation_id)
            pipe = self.redis.pipeline(transaction=True)
            pipe.rpush(agents, message.model_dump_json())
            pipe.rpush(messages, MESSAGE.dump_json(("agent", message.text)).decode())
            for key in self._keys(space, conversation_id):
                pipe.pexpire(key, int(self.idle_s * 1000))
            pipe.zadd(f"kefu:{space}:live", {conversation_id: message.at})
            pipe.execute()

        self._call(work)

    def agent_messages(self, conversation_id: str, seen: int) -> list[AgentMessage]:
        def work() -> list[AgentMessage]:
            for space in SPACES:
                found = self.redis.lrange(self._key(space, "agents", conversation_id), seen, -1)
                if found:
                    return [AgentMessage.model_validate_json(a) for a in found]
            return []

        return self._call(work)
