"""Manifest reads and tag lists answered from what the Image API records (``quota.served``),
never from what the registry's storage happens to hold.

The watch cache answers the common read (a tag, or a digest in the stream's history) with
no call at all. A read the cache cannot answer is asked of the API server: the stream may
have been written a moment ago (a pull right after its push), and a digest may be recorded
by an Image rather than the stream's history (a push by digest, an index's child). Images
found are kept for a while by digest: their content never changes, their name is their
digest, so a pull of an index reads each child's Image once, not once per pull.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Protocol

from quota.objects import Obj
from quota.served import RecordedImage, RecordedRepository, recorded_image, recorded_repository
from webhook.pushreview.auth import TtlCache

IMAGE_CACHE_SECONDS: Final = 300.0
"""How long a found Image is believed: its content is immutable, so this only bounds how
long a pruned Image's digest stays readable (the pruner's own --keep-younger-than is 60m)."""
IMAGE_CACHE_ENTRIES: Final = 10_000
"""Images kept; a few hundred bytes each (a reference and an index's child digests)."""
MAX_INDEXES_READ: Final = 50
"""Images of the stream's history read to find an index listing an unknown digest: each
is one API call the first time, so a read of a digest nobody recorded costs at most this
many (the current tags' images come first; older entries past this are not searched)."""


class RecordedStreams(Protocol):
    def recorded(self, namespace: str, name: str) -> RecordedRepository | None: ...


class LiveRecords(Protocol):
    def stream(self, namespace: str, name: str) -> Obj | None: ...
    def image(self, digest: str) -> Obj | None: ...


def _is_digest(reference: str) -> bool:
    """A manifest reference the route accepted is a tag or a digest; tags hold no ':'."""
    return ":" in reference


class ManifestReads:
    def __init__(
        self,
        streams: RecordedStreams,
        records: LiveRecords,
        images: TtlCache[RecordedImage] | None = None,
    ) -> None:
        self._streams = streams
        self._records = records
        self._images = images or TtlCache(IMAGE_CACHE_SECONDS, IMAGE_CACHE_ENTRIES)

    def manifest_digest(self, namespace: str, name: str, reference: str) -> str | None:
        """The digest a read of ``reference`` (a tag or a digest) in ``namespace/name`` is
        forwarded by, or None when the Image API records no such manifest there.

        Raises ``RecordFailed`` when the API server cannot be asked."""
        repository = f"{namespace}/{name}"
        cached = self._streams.recorded(namespace, name)
        if cached is not None:
            found = self._in(cached, repository, reference)
            if found is not None:
                return found
        live = self._records.stream(namespace, name)
        if live is None:
            # Every push, a push by digest too, creates the stream first: none, nothing.
            return None
        return self._in(recorded_repository(live), repository, reference)

    def tags(self, namespace: str, name: str) -> list[str] | None:
        """The stream's tags as the API server has them now, None without a stream. Read
        live, as OpenShift's registry does: a list is no pull's hot path, and a tag
        deleted a moment ago must not be listed."""
        live = self._records.stream(namespace, name)
        return None if live is None else recorded_repository(live).tags()

    def _in(self, recorded: RecordedRepository, repository: str, reference: str) -> str | None:
        if not _is_digest(reference):
            return recorded.tag_target(reference)
        if reference in recorded.digests:
            return reference
        own = self._image(reference)
        if own is not None and own.pushed_by_digest_to(repository):
            return reference
        for index in self._indexes(recorded):
            if reference in index.children:
                return reference
        return None

    def _indexes(self, recorded: RecordedRepository) -> Iterator[RecordedImage]:
        """Images of the stream's history, current tags' first, at most MAX_INDEXES_READ."""
        current = list(dict.fromkeys(recorded.current.values()))
        older = sorted(recorded.digests - set(current))
        for digest in (current + older)[:MAX_INDEXES_READ]:
            image = self._image(digest)
            if image is not None:
                yield image

    def _image(self, digest: str) -> RecordedImage | None:
        """The Image for ``digest``, from the cache or the API server. Absence is never
        kept: a push by digest may record it the next moment."""
        found = self._images.get(digest)
        if found is not None:
            return found
        image = self._records.image(digest)
        if image is None:
            return None
        found = recorded_image(image)
        self._images.put(digest, found)
        return found
