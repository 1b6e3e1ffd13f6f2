"""Manifest reads and tag lists answered from what the Image API records (``quota.served``),
never from what the registry's storage happens to hold.

The watch cache answers the common read (a tag, or a digest in the stream's history) with
no call at all. A read the cache cannot answer is asked of the API server: the stream may
have been written a moment ago (a pull right after its push), and a digest may be recorded
by an Image rather than the stream's history (a push by digest, an index's child at any
depth). Images found are kept for a while by digest: their content never changes, their
name is their digest, so a pull of an index reads each child's Image once, not once per
pull. Misses are kept briefly, and one read makes a bounded number of API calls, whatever it names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Protocol

from quota.objects import Obj
from quota.served import RecordedImage, RecordedRepository, recorded_image, recorded_repository
from serving.callerreviews import TtlCache

IMAGE_CACHE_SECONDS: Final = 300.0
"""How long a found Image is believed: its content is immutable, so this only bounds how
long a pruned Image's digest stays readable (the pruner's own --keep-younger-than is 60m)."""
IMAGE_CACHE_ENTRIES: Final = 10_000
"""Images kept; a few hundred bytes each (a reference and an index's child digests)."""
MISSING_IMAGE_SECONDS: Final = 2.0
"""How long an Image found missing stays missing here: a client repeating a read (or a
history naming a pruned Image) costs one GET per digest per 2 s, the rejected-token cache's
time. Short, because a push by digest handled by another worker cannot clear this
worker's cache; the worker that recorded the push clears its own at once (``recorded``)."""
MAX_IMAGE_READS: Final = 8
"""Image GETs one manifest read may make, plus one ImageStream GET: unbounded, a read of a
digest nobody recorded made up to 102 (docs/performance.md, "Reads of a digest")."""


class RecordedStreams(Protocol):
    def recorded(self, namespace: str, name: str) -> RecordedRepository | None: ...


class LiveRecords(Protocol):
    def stream(self, namespace: str, name: str) -> Obj | None: ...
    def image(self, digest: str) -> Obj | None: ...


def _is_digest(reference: str) -> bool:
    """A manifest reference the route accepted is a tag or a digest; tags hold no ':'."""
    return ":" in reference


@dataclass
class _Search:
    """One read's Image lookups: each digest looked up once, at most ``left`` GETs."""

    left: int = MAX_IMAGE_READS
    looked: dict[str, RecordedImage | None] = field(default_factory=dict)


class ManifestReads:
    def __init__(
        self,
        streams: RecordedStreams,
        records: LiveRecords,
        images: TtlCache[RecordedImage] | None = None,
        missing: TtlCache[bool] | None = None,
    ) -> None:
        self._streams = streams
        self._records = records
        self._images = images or TtlCache(IMAGE_CACHE_SECONDS, IMAGE_CACHE_ENTRIES)
        self._missing = missing or TtlCache(MISSING_IMAGE_SECONDS, IMAGE_CACHE_ENTRIES)

    def manifest_digest(self, namespace: str, name: str, reference: str) -> str | None:
        """The digest a read of ``reference`` (a tag or a digest) in ``namespace/name`` is
        forwarded by, or None when the Image API records no such manifest there. At most
        one ImageStream GET and ``MAX_IMAGE_READS`` Image GETs.

        Raises ``RecordFailed`` when the API server cannot be asked."""
        repository = f"{namespace}/{name}"
        search = _Search()
        cached = self._streams.recorded(namespace, name)
        if cached is not None:
            found = self._in(cached, repository, reference, search)
            if found is not None:
                return found
        live = self._records.stream(namespace, name)
        if live is None:
            # Every push, a push by digest too, creates the stream first: none, nothing.
            return None
        return self._in(recorded_repository(live), repository, reference, search)

    def recorded(self, digest: str) -> None:
        """The push path recorded an Image for ``digest``: a miss kept for it is wrong now.
        (The Image itself is read on demand: one that existed is kept as it was.)"""
        self._missing.put(digest, False)

    def tags(self, namespace: str, name: str) -> list[str] | None:
        """The stream's tags as the API server has them now, None without a stream. Read
        live, as OpenShift's registry does: a list is no pull's hot path, and a tag
        deleted a moment ago must not be listed."""
        live = self._records.stream(namespace, name)
        return None if live is None else recorded_repository(live).tags()

    def _in(
        self, recorded: RecordedRepository, repository: str, reference: str, search: _Search
    ) -> str | None:
        if not _is_digest(reference):
            return recorded.tag_target(reference)
        if reference in recorded.digests:
            return reference
        own = self._image(reference, search)
        if own is not None and own.pushed_by_digest_to(repository):
            return reference
        seen: set[str] = set()
        for index in self._indexes(recorded, search):
            if self._names(index, reference, search, seen):
                return reference
        return None

    def _names(self, index: RecordedImage, reference: str, search: _Search, seen: set[str]) -> bool:
        """``index`` names ``reference`` as a child, or a child index of it does, at any
        depth the search's GETs reach: each index's own children first, then theirs
        (each child's Image recorded with it, ``frontdoor.pushes.child_pushes``)."""
        if reference in index.children:
            return True
        for child in sorted(index.children - seen):
            seen.add(child)
            image = self._image(child, search)
            if image is not None and image.children and self._names(image, reference, search, seen):
                return True
        return False

    def _indexes(self, recorded: RecordedRepository, search: _Search) -> Iterator[RecordedImage]:
        """Images of the stream's history, current tags' first, as far as the search's
        GETs reach (kept ones cost none)."""
        current = list(dict.fromkeys(recorded.current.values()))
        older = sorted(recorded.digests - set(current))
        for digest in current + older:
            image = self._image(digest, search)
            if image is not None and image.children:
                yield image

    def _image(self, digest: str, search: _Search) -> RecordedImage | None:
        """The Image for ``digest``: kept, looked up already in this read, or asked of the
        API server while the search has GETs left (None past them)."""
        if digest in search.looked:
            return search.looked[digest]
        found = self._images.get(digest)
        if found is None and not self._missing.get(digest) and search.left > 0:
            search.left -= 1
            image = self._records.image(digest)
            if image is None:
                self._missing.put(digest, True)
            else:
                found = recorded_image(image)
                self._images.put(digest, found)
        search.looked[digest] = found
        return found
