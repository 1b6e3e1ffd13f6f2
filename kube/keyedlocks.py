"""One lock per key (a namespace), kept only while a thread holds or waits on it.

A plain ``defaultdict(Lock)`` grows by one lock per namespace ever seen and never shrinks,
which a cluster with namespace churn turns into a leak. Here each entry counts its users
(holders and waiters) under one guard: it is created by the first and dropped by the last,
so two threads of one key always share the same lock object.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0
    """Threads holding or waiting on ``lock``; changed only under the guard."""


class KeyedLocks:
    """``acquire(key, timeout)`` / ``release(key)``, like ``threading.Lock`` per key."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}

    def acquire(self, key: Hashable, *, timeout: float) -> bool:
        """Hold ``key`` within ``timeout`` seconds (0: do not wait); False when not."""
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            entry.users += 1
        if entry.lock.acquire(timeout=max(timeout, 0.0)):
            return True
        with self._guard:
            self._leave(key, entry)
        return False

    def release(self, key: Hashable) -> None:
        """Let the next waiter of ``key`` in; RuntimeError when ``key`` is not held."""
        with self._guard:
            entry = self._entries.get(key)
            if entry is None or not entry.lock.locked():
                raise RuntimeError(f"release of a key that is not held: {key!r}")
            entry.lock.release()
            self._leave(key, entry)

    def _leave(self, key: Hashable, entry: _Entry) -> None:
        """One user fewer; the last one drops the entry. Called with the guard held."""
        entry.users -= 1
        if entry.users == 0:
            del self._entries[key]

    def users(self, key: Hashable) -> int:
        """Threads holding or waiting on ``key`` now."""
        with self._guard:
            entry = self._entries.get(key)
            return 0 if entry is None else entry.users

    def __len__(self) -> int:
        """Keys held or awaited now: what the map costs in memory."""
        with self._guard:
            return len(self._entries)
