"""The ImageStreams this worker's own tag writes returned, so that the next push to the same
repository writes its tag from that answer instead of reading the stream live first: one
API round trip fewer on a push to a repository this worker pushed to last.

The watch cache keeps a stream's usage, not its status (``serving.caches.cached_stream``),
so a tag cannot be written from it; it still says when a remembered stream is stale. A
remembered stream is used only while the cache holds that stream at the same
resourceVersion or an older one (resourceVersions are etcd revisions, which only grow):
a newer one there is someone else's write, and a stream the cache does not hold may have
been deleted, so either is read live. A stale one that slips through costs a 409 and a
live read, never a wrong record: the tag's write carries the resourceVersion it was
computed from (``frontdoor.records.ImageRecords.tag``), as quota charges do
(``serving.quotacharge.WrittenQuotas``). A remembered stream whose tag already names the
pushed digest sends no write to be refused, so ``tag`` reads that one live before it
counts the tag recorded (the stored tag may have moved since, or the stream be gone).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from frontdoor.caches import caught_up
from kube.transforms import strip_managed_fields
from quota.objects import Obj, metadata

STREAMS_KEPT: Final = 32
"""Streams remembered per worker, least recently written dropped first. A client pushes
its tags one repository at a time, so the next push to a repository comes soon after the
last; 32 covers a CI runner's burst across a build's images, while a stream of 1,000 tag
events (some 0.3 MB as JSON) keeps the bound near 10 MB."""

CachedVersion = Callable[[str, str], str | None]
"""The watch cache's resourceVersion of the stream ``namespace, name``; None without one."""


def resource_version(stream: Obj | None) -> str | None:
    """A (cached) stream's resourceVersion, or None for no stream or no version."""
    if stream is None:
        return None
    version = metadata(stream).get("resourceVersion")
    return str(version) if version else None


class StreamMemory:
    """The streams our writes returned, by namespace and name, bounded (LRU)."""

    def __init__(self, cached_version: CachedVersion, size: int = STREAMS_KEPT) -> None:
        self._cached_version = cached_version
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], Obj] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def remember(self, stream: Obj) -> None:
        """Keep the stream as the API server answered a write of it (its managedFields
        left out: a replace without them keeps the stored ones)."""
        meta = metadata(stream)
        key = (str(meta.get("namespace")), str(meta.get("name")))
        with self._lock:
            self._entries[key] = strip_managed_fields(stream)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._entries.pop((namespace, name), None)

    def recall(self, namespace: str, name: str) -> Obj | None:
        """The remembered stream while the watch cache has nothing newer of it; None (and
        forgotten) when the cache holds a newer one or none at all."""
        with self._lock:
            remembered = self._entries.get((namespace, name))
        if remembered is None:
            return None
        cached = self._cached_version(namespace, name)
        mine = resource_version(remembered)
        if cached is None or mine is None or not caught_up(mine, cached):
            self.forget(namespace, name)
            return None
        return remembered
