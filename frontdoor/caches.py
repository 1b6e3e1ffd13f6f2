"""The front door's watch caches: the push rules' (``serving.caches``) with each stream's tags
kept too, as a manifest read by tag is forwarded by the tag's current image, and what a
delete asks of them: the streams naming a digest, the indexes listing one, the Images a
push by digest marked for a repository.

A delete takes these answers as proposals, never as the last word: it re-reads live what
it acts on (``frontdoor.deletes``). Finding the streams that name a digest scans the
cached streams' packed digests in memory (23 ms over 20,000 streams of 15 digests) rather
than keeping an index by digest, which the informer's ``value -> set of keys`` shape would
make 103 MiB there, 3.5 times the 29 MiB cache it indexes (tracemalloc, 2026-12-08).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Final

from kubernetes import client

from quota.imagerefs import image_digest, pushed_by_digest_to
from quota.objects import Obj, metadata
from quota.served import RecordedRepository, current_images, recorded_image
from serving.caches import (
    PUSHED_TO_INDEX,
    STREAM_IMAGES,
    STREAM_SHA256,
    CachedImages,
    PushCaches,
    cached_stream,
    image_keys,
    stream_digests,
)
from serving.compactimages import SHA256_BYTES, sha256_bytes

STREAM_CURRENT: Final = "current"
"""Key of a cached stream's status tags' current images, as ``(tag, digest)`` pairs."""
CHILD_INDEX: Final = "child-of-index:"
"""Index key prefix of an image index's Image, once per child digest that follows: few
Images are indexes and each lists a handful of children, so the index stays small."""


def cached_stream_for_reads(stream: Obj) -> Obj:
    """``cached_stream`` plus each status tag's current image, which the front door
    forwards a read by tag by (a few hundred bytes per tag, which the webhook server,
    judging usage alone, need not hold)."""
    return {**cached_stream(stream), STREAM_CURRENT: tuple(current_images(stream).items())}


def front_door_image_keys(image: Obj) -> list[str]:
    """``serving.caches.image_keys`` and, for an index, one key per child it lists."""
    children = sorted(recorded_image(image).children)
    return image_keys(image) + [CHILD_INDEX + child for child in children]


def names_digest(cached: Obj, digest: str) -> bool:
    """Whether a cached stream's history names ``digest``: a search of its packed bytes at
    digest boundaries only (a match across two digests is not one)."""
    raw = sha256_bytes(digest)
    if raw is None:
        return digest in cached.get(STREAM_IMAGES, ())
    packed: bytes = cached.get(STREAM_SHA256, b"")
    at = packed.find(raw)
    while at >= 0:
        if at % SHA256_BYTES == 0:
            return True
        at = packed.find(raw, at + 1)
    return False


def caught_up(cached_version: str, written_version: str) -> bool:
    """A cached object is at least as new as a write answered with ``written_version``.

    resourceVersions are etcd revisions, which only grow (Kubernetes compares them as
    integers itself, in the watch cache); one that is not a number is only ever equal."""
    if cached_version.isdigit() and written_version.isdigit():
        return int(cached_version) >= int(written_version)
    return cached_version == written_version


class FrontDoorCaches(PushCaches):
    """What the push rules read, what the streams record for reads, and what deletes ask."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self._stream_seen = threading.Condition()
        # Registered before start: wakes a delete waiting for its own write to arrive.
        self.imagestreams.add_handler(self._on_stream)

    def cache_stream(self, stream: Obj) -> Obj:
        return cached_stream_for_reads(stream)

    def image_keys(self, image: Obj) -> list[str]:
        return front_door_image_keys(image)

    def recorded(self, namespace: str, name: str) -> RecordedRepository | None:
        """What the cached ImageStream ``namespace/name`` records for reads, or None when
        the cache has no such stream (not synced, not seen yet, or none)."""
        cached = self.imagestreams.get(f"{namespace}/{name}")
        if cached is None:
            return None
        return RecordedRepository(
            dict(cached.get(STREAM_CURRENT, ())), frozenset(stream_digests(cached))
        )

    def images_by_digest(self) -> CachedImages:
        """The cached Images by digest, each looked up in the index."""
        return CachedImages(self.images)

    def marked(self, repository: str) -> list[str]:
        """The digests a push by digest marked for ``repository`` (``<namespace>/<name>``)."""
        namespace = repository.split("/", 1)[0]
        return [
            digest
            for image in self.images.by_index(PUSHED_TO_INDEX + namespace)
            if pushed_by_digest_to(image) == repository
            and (digest := image_digest(image)) is not None
        ]

    def parents(self, digest: str) -> list[str]:
        """The digests of the cached indexes that list ``digest`` as a child."""
        return sorted(
            parent
            for image in self.images.by_index(CHILD_INDEX + digest)
            if digest in recorded_image(image).children
            and (parent := image_digest(image)) is not None
        )

    def streams_naming(self, digests: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """For each of ``digests``, the ``(namespace, name)`` of every cached stream whose
        history names it: one pass over the cached streams, however many digests."""
        wanted = sorted(set(digests))
        found: dict[str, list[tuple[str, str]]] = {digest: [] for digest in wanted}
        for cached in self.imagestreams.list():
            for digest in wanted:
                if names_digest(cached, digest):
                    meta = metadata(cached)
                    found[digest].append((str(meta.get("namespace")), str(meta.get("name"))))
        return found

    def wait_for_stream(
        self, namespace: str, name: str, resource_version: str, timeout: float
    ) -> bool:
        """Wait until the cache holds ``namespace/name`` at ``resource_version`` or newer;
        False when ``timeout`` seconds pass first (a stream deleted since counts as not
        arrived: the caller keeps what it would have removed). Watch events arrive in
        resourceVersion order, so every stream written before it is cached then."""

        def arrived() -> bool:
            cached = self.imagestreams.get(f"{namespace}/{name}")
            version = str(metadata(cached).get("resourceVersion") or "") if cached else ""
            return bool(version) and caught_up(version, resource_version)

        with self._stream_seen:
            return self._stream_seen.wait_for(arrived, timeout)

    def _on_stream(self, kind: str, obj: Obj, previous: Obj | None) -> None:
        with self._stream_seen:
            self._stream_seen.notify_all()
