"""What a delete through the front door changes, decided on plain data.

The distribution spec deletes a tag, a manifest by digest, or a blob (end-9, end-10); this
service records pushes in the Image API, so each delete is first a change of metadata: the
tag (or every history entry of the digest) leaves the ImageStream, and then whatever that
change left unreferenced goes too. "Referenced" is ``quota.imagerefs``' one answer (a
stream's history, a push by digest's mark, an index's children at any depth): the same
one the storage quota counts and the pruner keeps, so a delete never frees what a count
still charges, nor keeps what a count already dropped.

Two scopes, as OpenShift's registry separates a repository's manifest links from the
cluster's Images: a manifest the *repository* no longer references is unlinked from that
repository in the registry; an Image *no repository* references is deleted.

Both are asked of the few digests a delete touches, never of every stream and Image: the
repository's marks come from a cache's index (``marked``), and "does any repository
reference it" walks from a candidate up to the indexes that list it (``unreferenced``),
so the caller reads live only the candidates, their indexes and the streams naming them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from quota.imagerefs import image_blobs, pushed_by_digest_to, with_children
from quota.measure import stream_image_digests
from quota.objects import Obj, mapping, metadata
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST


@dataclass(frozen=True)
class StreamChange:
    """A stream with a tag or a digest taken out: the new ``status`` and ``spec`` (None
    where that part is unchanged) and the digests whose history entries left it."""

    status: dict[str, Any] | None
    spec: dict[str, Any] | None
    removed: frozenset[str]

    @property
    def changed(self) -> bool:
        return self.status is not None or self.spec is not None


def _status_tags(stream: Mapping[str, Any]) -> list[Any]:
    tags = mapping(stream.get("status")).get("tags")
    return list(tags) if isinstance(tags, list) else []


def _spec_tags(stream: Mapping[str, Any]) -> list[Any]:
    tags = mapping(stream.get("spec")).get("tags")
    return list(tags) if isinstance(tags, list) else []


def _entry_digests(entry: Mapping[str, Any]) -> set[str]:
    items = entry.get("items")
    return {
        item["image"]
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("image"), str) and item["image"]
    }


def holds_tag(stream: Mapping[str, Any] | None, tag: str) -> bool:
    """The stream names ``tag`` in its status history or its ``spec.tags``."""
    if stream is None:
        return False
    return any(isinstance(e, dict) and e.get("tag") == tag for e in _status_tags(stream)) or any(
        isinstance(e, dict) and e.get("name") == tag for e in _spec_tags(stream)
    )


def without_tag(stream: Mapping[str, Any], tag: str) -> StreamChange:
    """``stream`` with ``tag`` gone from its status history and from ``spec.tags``.

    ``spec.tags`` too, as OpenShift deletes an ImageStreamTag (both halves): a tag left in
    the spec would still count against ``alauda.io/image-tags`` and keep the registry's
    tag (the tag reconciler holds every tag the spec names), though the user deleted it.
    ``removed``: the digests of the tag's whole history that no other tag still names."""
    status_tags = _status_tags(stream)
    kept = [e for e in status_tags if not (isinstance(e, dict) and e.get("tag") == tag)]
    gone: set[str] = set()
    for entry in status_tags:
        if isinstance(entry, dict) and entry.get("tag") == tag:
            gone |= _entry_digests(entry)
    status = None
    if len(kept) != len(status_tags):
        status = {**copy.deepcopy(dict(mapping(stream.get("status")))), "tags": kept}
    spec_tags = _spec_tags(stream)
    spec_kept = [e for e in spec_tags if not (isinstance(e, dict) and e.get("name") == tag)]
    spec = None
    if len(spec_kept) != len(spec_tags):
        spec = {**copy.deepcopy(dict(mapping(stream.get("spec")))), "tags": spec_kept}
    after = {"status": {"tags": kept}}
    return StreamChange(status, spec, frozenset(gone - stream_image_digests(after)))


def without_digest(stream: Mapping[str, Any], digest: str) -> StreamChange:
    """``stream`` with ``digest`` gone. A tag whose current image is ``digest`` goes whole
    (its history, and its ``spec.tags`` entry, as :func:`without_tag` takes a tag), as
    distribution deletes the tags that point at a deleted manifest: keeping the tag would
    serve its previous image again, silently republishing what the user withdrew. A tag
    that has moved on keeps its newer images and loses only its entries naming
    ``digest``. ``removed``: the digests no tag names any more."""
    status_tags = _status_tags(stream)
    kept: list[Any] = []
    dropped: set[str] = set()
    gone: set[str] = set()
    for entry in status_tags:
        if not isinstance(entry, dict):
            kept.append(entry)
            continue
        items = entry.get("items")
        items = list(items) if isinstance(items, list) else []
        newest = items[0] if items and isinstance(items[0], dict) else {}
        if newest.get("image") == digest:
            dropped.add(str(entry.get("tag")))
            gone |= _entry_digests(entry)
            continue
        left = [i for i in items if not (isinstance(i, dict) and i.get("image") == digest)]
        if len(left) != len(items):
            gone.add(digest)
        if left:
            kept.append({**entry, "items": left} if len(left) != len(items) else entry)
    if not gone and not dropped:
        return StreamChange(None, None, frozenset())
    status = {**copy.deepcopy(dict(mapping(stream.get("status")))), "tags": kept}
    spec_tags = _spec_tags(stream)
    spec_kept = [e for e in spec_tags if not (isinstance(e, dict) and e.get("name") in dropped)]
    spec = None
    if len(spec_kept) != len(spec_tags):
        spec = {**copy.deepcopy(dict(mapping(stream.get("spec")))), "tags": spec_kept}
    after = {"status": {"tags": kept}}
    return StreamChange(status, spec, frozenset(gone - stream_image_digests(after)))


def marked_for(repository: str, images: Mapping[str, Obj]) -> frozenset[str]:
    """The digests of ``images`` a push by digest marked for ``repository``: for callers
    holding every Image; a door finds them in its cache's index instead."""
    return frozenset(d for d, image in images.items() if pushed_by_digest_to(image) == repository)


def repository_images(
    stream: Mapping[str, Any] | None, images: Mapping[str, Obj], marked: Iterable[str]
) -> frozenset[str]:
    """The digests a repository references: its stream's history, the pushes by digest
    ``marked`` for it, and their children at any depth."""
    return with_children(set(stream_image_digests(stream)) | set(marked), images)


def without_mark(image: Obj) -> Obj:
    """``image`` without its push-by-digest mark: what it is once a delete by digest in
    the marked repository took the mark's reference away."""
    trimmed = copy.deepcopy(image)
    annotations = mapping(metadata(trimmed).get("annotations"))
    if ANNOTATION_PUSHED_BY_DIGEST in annotations:
        del trimmed["metadata"]["annotations"][ANNOTATION_PUSHED_BY_DIGEST]
    return trimmed


def ancestors(digests: Iterable[str], parents: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """``digests`` and every index above them (``parents``: digest -> the indexes that list
    it as a child), at any depth; a cycle ends where it repeats."""
    seen: set[str] = set()
    pending = list(digests)
    while pending:
        digest = pending.pop()
        if digest not in seen:
            seen.add(digest)
            pending.extend(parents.get(digest, ()))
    return frozenset(seen)


def unreferenced(
    candidates: Iterable[str], parents: Mapping[str, Iterable[str]], roots: Iterable[str]
) -> tuple[str, ...]:
    """The ``candidates`` no repository references, in order. ``roots``: the digests among
    the candidates and their ancestors that a stream's history names or a push by digest
    marks; a candidate is referenced when it or an index above it is a root (the same
    answer as ``quota.imagerefs.referenced_images``, asked from the candidate upward
    instead of from every stream downward)."""
    rooted = set(roots)
    return tuple(sorted(d for d in set(candidates) if not ancestors([d], parents) & rooted))


def blob_holders(
    blob: str, stream: Mapping[str, Any] | None, images: Mapping[str, Obj], marked: Iterable[str]
) -> tuple[str, ...]:
    """The digests of the Images a repository references (``repository_images``) that hold
    ``blob`` (as config or layer), in order: while any does, unlinking the blob would
    break its pulls."""
    return tuple(
        sorted(
            digest
            for digest in repository_images(stream, images, marked)
            if any(held.digest == blob for held in image_blobs(images.get(digest)))
        )
    )


def holding_index(
    digest: str, stream: Mapping[str, Any] | None, images: Mapping[str, Obj], marked: Iterable[str]
) -> str | None:
    """An index a repository references (``repository_images``) that names ``digest`` as
    its child (directly or deeper), when the repository references ``digest`` only that
    way; else None. Such a manifest is deleted with its index, never alone: the index
    would break."""
    direct = set(stream_image_digests(stream)) | set(marked)
    if digest in direct:
        return None
    for root in sorted(direct):
        if digest in with_children([root], images) - {root}:
            return root
    return None
