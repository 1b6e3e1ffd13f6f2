"""What the registry may serve of a repository: only what the Image API records for it.

A registry serves whatever its storage holds, and its storage can hold more than was
judged (a manifest uploaded as a plain blob and taken for a revision by a descriptor
cache; a tag left behind when its ImageStream was deleted). The front door therefore
decides every manifest read and tag list from the ImageStream and the Images, as
OpenShift's registry does (its ``manifestService`` reads through the ImageStream), and
forwards a read only by a digest those record. The rules here are that decision, on
plain data; ``frontdoor.reads`` does the reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from quota.measure import stream_image_digests, stream_tag_names
from quota.objects import mapping
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST


@dataclass(frozen=True)
class RecordedRepository:
    """One ImageStream as reads need it: each tag's current image (the newest entry of
    its status history) and every image digest of the whole history."""

    current: Mapping[str, str]
    digests: frozenset[str]

    def tag_target(self, tag: str) -> str | None:
        """The digest a read by ``tag`` is served by, or None: the tag is not recorded."""
        return self.current.get(tag)

    def tags(self) -> list[str]:
        """The tags a tag list answers, in the distribution spec's lexical order."""
        return sorted(self.current)


def current_images(stream: Mapping[str, Any] | None) -> dict[str, str]:
    """``tag -> digest`` of each status tag whose newest history entry names an image.

    Spec tags with no status entry point at nothing pushed here, so they serve nothing;
    a later status entry for a tag already seen is ignored (the API server keeps one)."""
    current: dict[str, str] = {}
    tags = mapping(mapping(stream).get("status")).get("tags")
    for entry in tags if isinstance(tags, list) else []:
        if not isinstance(entry, dict):
            continue
        tag, items = entry.get("tag"), entry.get("items")
        if not isinstance(tag, str) or not tag or tag in current:
            continue
        newest = items[0] if isinstance(items, list) and items else None
        image = newest.get("image") if isinstance(newest, dict) else None
        if isinstance(image, str) and image:
            current[tag] = image
    return current


def recorded_repository(stream: Mapping[str, Any] | None) -> RecordedRepository:
    """What ``stream`` (a raw ImageStream) records for reads."""
    return RecordedRepository(current_images(stream), frozenset(stream_image_digests(stream)))


@dataclass(frozen=True)
class RecordedImage:
    """What reads need of one Image: the repository a push by digest recorded it for
    (``ANNOTATION_PUSHED_BY_DIGEST``, empty when none did) and, for an index, the digests
    of the manifests it lists (``dockerImageManifests``)."""

    pushed_by_digest: str
    children: frozenset[str]

    def pushed_by_digest_to(self, repository: str) -> bool:
        """The front door recorded this Image for a push by digest to ``repository``.

        Not the Image's ``dockerImageReference``: a tag push writes that too, before its
        tag is judged again and perhaps refused, and a refused push serves nothing. Images
        recorded before this mark existed carry none: they are served where a tag or an
        index records them."""
        return bool(self.pushed_by_digest) and self.pushed_by_digest == repository


def recorded_image(image: Mapping[str, Any] | None) -> RecordedImage:
    """What ``image`` (a raw Image) records for reads."""
    body = mapping(image)
    pushed = mapping(mapping(body.get("metadata")).get("annotations")).get(
        ANNOTATION_PUSHED_BY_DIGEST
    )
    entries = body.get("dockerImageManifests")
    children = frozenset(
        entry["digest"]
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("digest"), str)
    )
    return RecordedImage(pushed if isinstance(pushed, str) else "", children)


@dataclass(frozen=True)
class TagPage:
    """One page of a tag list; ``last`` is the tag to continue after, None at the end."""

    tags: list[str]
    last: str | None


def tag_page(tags: Sequence[str], count: int | None, last: str | None) -> TagPage:
    """The distribution spec's pagination (``n`` and ``last``, end-8b): the tags after
    ``last`` in lexical order, at most ``count`` of them; ``last`` of the page when more
    follow, so that the caller can link the next page."""
    after = [tag for tag in sorted(tags) if last is None or tag > last]
    if count is None or count >= len(after):
        return TagPage(after, None)
    page = after[:count]
    return TagPage(page, page[-1] if page else None)


def stale_tags(registry_tags: Sequence[str], stream: Mapping[str, Any] | None) -> list[str]:
    """The registry's tags that ``stream`` (None: no stream) does not hold, in order: what
    the tag reconciler deletes. A tag is held while the stream names it anywhere, in
    ``spec.tags`` or ``status.tags``: the tags the contract counts, so a tag is never
    deleted while a limit still charges it."""
    held = stream_tag_names(stream)
    return sorted({tag for tag in registry_tags if tag not in held})
