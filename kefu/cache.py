"""A small bounded cache that threads may share: the ``size`` most recently used entries, each kept at most ``ttl``
seconds (None: until dropped), the least recently used dropped first.

    vectors = Recent[str, np.ndarray](size=256)
    vector = vectors.get(text, embed)  # embed(text) runs only when text is not cached

``make`` runs outside the lock, so two threads missing the same key at once may both make it (the later value
is kept). A ``forget`` that lands while a value is being made wins: that value is returned but not stored.
Not here: a size in bytes, per-entry ttl.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    def __init__(self, size: int, ttl: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.ttl, self.clock = size, ttl, clock
        self.made = 0  # values made (misses)
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()  # key -> (expires at, value)
        self._forgotten = 0  # bumped by forget/clear: a value made across one is not stored
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[K], V]) -> V:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > self.clock():
                self._entries.move_to_end(key)
                return entry[1]
            forgotten = self._forgotten
        value = make(key)
        with self._lock:
            self.made += 1
            if self.size > 0 and forgotten == self._forgotten:
                expires = self.clock() + self.ttl if self.ttl is not None else float("inf")
                self._entries[key] = (expires, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return value

    def forget(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._forgotten += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._forgotten += 1

    def __len__(self) -> int:
        return len(self._entries)
