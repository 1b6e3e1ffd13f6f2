"""The front door's watch caches: the push rules' (``serving.caches``) with each stream's tags
kept too, as a manifest read by tag is forwarded by the tag's current image."""

from __future__ import annotations

from typing import Final

from quota.objects import Obj
from quota.served import RecordedRepository, current_images
from serving.caches import PushCaches, cached_stream, stream_digests

STREAM_CURRENT: Final = "current"
"""Key of a cached stream's status tags' current images, as ``(tag, digest)`` pairs."""


def cached_stream_for_reads(stream: Obj) -> Obj:
    """``cached_stream`` plus each status tag's current image, which the front door
    forwards a read by tag by (a few hundred bytes per tag, which the webhook server,
    judging usage alone, need not hold)."""
    return {**cached_stream(stream), STREAM_CURRENT: tuple(current_images(stream).items())}


class FrontDoorCaches(PushCaches):
    """What the push rules read, and what the streams record for reads."""

    def cache_stream(self, stream: Obj) -> Obj:
        return cached_stream_for_reads(stream)

    def recorded(self, namespace: str, name: str) -> RecordedRepository | None:
        """What the cached ImageStream ``namespace/name`` records for reads, or None when
        the cache has no such stream (not synced, not seen yet, or none)."""
        cached = self.imagestreams.get(f"{namespace}/{name}")
        if cached is None:
            return None
        return RecordedRepository(
            dict(cached.get(STREAM_CURRENT, ())), frozenset(stream_digests(cached))
        )
