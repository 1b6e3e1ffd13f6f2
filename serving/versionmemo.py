"""What a pure rule computed from objects of the watch caches, kept while they stay the same.

The caches hand the same LimitRanges to review after review, and turning them into limits
parses every quantity again (``effective_limits``: 5 to 8 % of a review, bench hotpath).
An object's uid and resourceVersion change with every write, so together they name its
content. Only for objects as stored: an object under admission carries the
resourceVersion of the one it replaces, with other content.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar

V = TypeVar("V")
Obj = dict[str, Any]
Key = tuple[tuple[str, str], ...]

MEMO_ENTRIES: Final = 4096
"""Distinct sets of objects remembered; past that the memo starts afresh. A namespace's
LimitRanges are one set: room for every namespace of a large cluster (1,000 in issue 11's
scale test) several versions over, at a few hundred bytes each."""


def versions(objects: Sequence[Obj]) -> Key | None:
    """``(uid, resourceVersion)`` of each object, in order; None if one lacks either."""
    key = []
    for obj in objects:
        metadata = obj.get("metadata")
        if not isinstance(metadata, dict):
            return None
        uid, version = metadata.get("uid"), metadata.get("resourceVersion")
        if not (isinstance(uid, str) and uid and isinstance(version, str) and version):
            return None
        key.append((uid, version))
    return tuple(key)


class VersionMemo(Generic[V]):
    """``compute(objects)``, remembered by the objects' versions (computed anew, and not
    kept, when an object has none)."""

    def __init__(
        self, compute: Callable[[Sequence[Obj]], V], *, max_entries: int = MEMO_ENTRIES
    ) -> None:
        self._compute = compute
        self._max = max_entries
        self._items: dict[Key, V] = {}
        self._lock = threading.Lock()

    def __call__(self, objects: Sequence[Obj]) -> V:
        key = versions(objects)
        if key is None:
            return self._compute(objects)
        found = self._items.get(key)
        if found is not None:
            return found
        value = self._compute(objects)
        with self._lock:
            if len(self._items) >= self._max:
                self._items.clear()
            self._items[key] = value
        return value
