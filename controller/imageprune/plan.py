"""What ``prune images`` removes, decided from plain data: the pure core of the pruner.

The three steps, in the order the run takes them (as ``oc adm prune images``):

1. **Tag history.** Each status tag keeps its ``keep_tag_revisions`` newest entries; an
   older entry leaves the stream unless it was created within ``keep_younger_than`` or
   names an Image a workload uses (``references.in_use``).
2. **Images.** An Image that no stream references after step 1 (``quota.imagerefs``:
   history, pushes by digest, an index's children at any depth) is removed, unless a
   workload uses it or it was created within ``keep_younger_than``; what keeps an index
   keeps its children.
3. **Manifests.** Each removed Image's manifest is deleted from every repository that
   held it (its streams before step 1, the repository its reference and any push by
   digest name), indexes before their children, so that no index is ever served with a
   child gone. The registry's garbage collection reclaims the blobs after.

The bytes a prune frees are the distinct blobs (config and layers) the removed Images
hold and no kept Image holds: what garbage collection can take back. Time is a
parameter; nothing here reads a clock, the API or the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from quota.imagerefs import (
    blob_sizes,
    pushed_by_digest_to,
    referenced_images,
    with_children,
)
from quota.measure import stream_image_digests
from quota.objects import Obj, mapping, metadata
from quota.served import recorded_image
from quota.timestamps import parse_rfc3339, require_aware

DEFAULT_KEEP_TAG_REVISIONS: Final = 3
"""``oc adm prune images --keep-tag-revisions``' default, and ImagePruner's."""
DEFAULT_KEEP_YOUNGER_THAN: Final = timedelta(minutes=60)
"""``oc adm prune images --keep-younger-than``' default (60m): a push in progress (its
Image recorded, its tag not yet) is never pruned."""


@dataclass(frozen=True)
class Policy:
    keep_tag_revisions: int = DEFAULT_KEEP_TAG_REVISIONS
    keep_younger_than: timedelta = DEFAULT_KEEP_YOUNGER_THAN


@dataclass(frozen=True)
class Revision:
    """One tag history entry that leaves its stream; ``position`` 0 is the newest."""

    repository: str
    tag: str
    image: str
    created: str
    position: int


@dataclass(frozen=True)
class ImageRemoval:
    digest: str
    name: str
    """The Image object's name."""
    repositories: tuple[str, ...]
    freed_bytes: int
    """Bytes of the blobs this Image is the first removal to hold and no kept Image
    holds: the removals' ``freed_bytes`` add up to ``Plan.freed_bytes``."""


@dataclass(frozen=True)
class Kept:
    """An Image the count of revisions alone would remove, kept by a rule (a workload
    uses it, or it is young, or its revision is): said so in the report."""

    digest: str
    why: str


@dataclass(frozen=True)
class Plan:
    revisions: tuple[Revision, ...]
    statuses: Mapping[str, list[dict[str, Any]]]
    """``<namespace>/<name>`` -> the stream's new ``status.tags``, for each stream step 1
    changes."""
    images: tuple[ImageRemoval, ...]
    """Indexes before their children (step 3's order)."""
    kept: tuple[Kept, ...]
    freed_bytes: int
    manifests: tuple[tuple[str, str], ...] = field(default=())
    """``(repository, digest)`` for step 3, in ``images``' order."""


def _repository(stream: Obj) -> str:
    meta = metadata(stream)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _young(created: object, now: datetime, policy: Policy) -> bool:
    """Created within ``keep_younger_than``; an unreadable time cannot be shown old."""
    when = parse_rfc3339(created)
    return when is None or now - when < policy.keep_younger_than


def prune_history(
    stream: Obj, policy: Policy, now: datetime, used: frozenset[str]
) -> tuple[list[dict[str, Any]], tuple[Revision, ...]]:
    """Step 1 for one stream: its new ``status.tags`` and the entries that left it."""
    repository = _repository(stream)
    tags = mapping(stream.get("status")).get("tags")
    new_tags: list[dict[str, Any]] = []
    removed: list[Revision] = []
    for entry in tags if isinstance(tags, list) else []:
        items = mapping(entry).get("items")
        if not isinstance(entry, dict) or not isinstance(items, list):
            new_tags.append(entry)
            continue
        kept_items = []
        for position, item in enumerate(items):
            body = mapping(item)
            image = body.get("image")
            if (
                position < policy.keep_tag_revisions
                or not isinstance(image, str)
                or not image
                or image in used
                or _young(body.get("created"), now, policy)
            ):
                kept_items.append(item)
                continue
            created = str(body.get("created", ""))
            removed.append(
                Revision(repository, str(entry.get("tag", "")), image, created, position)
            )
        if not kept_items and items:
            continue  # --keep-tag-revisions=0 took the whole history: the tag goes with it
        new_tags.append({**entry, "items": kept_items} if len(kept_items) < len(items) else entry)
    return new_tags, tuple(removed)


def _repositories_of(streams: Iterable[Obj], images: Mapping[str, Obj]) -> dict[str, set[str]]:
    """digest -> the repositories that hold its manifest, as the streams record them."""
    holders: dict[str, set[str]] = {}
    for stream in streams:
        repository = _repository(stream)
        for digest in with_children(stream_image_digests(stream), images):
            holders.setdefault(digest, set()).add(repository)
    for digest, image in images.items():
        named = [pushed_by_digest_to(image), _reference_repository(image)]
        holders.setdefault(digest, set()).update(name for name in named if name)
    return holders


def _reference_repository(image: Obj) -> str:
    """``<namespace>/<name>`` of ``host/<namespace>/<name>@digest``; "" if unreadable."""
    reference = image.get("dockerImageReference")
    if not isinstance(reference, str) or "@" not in reference:
        return ""
    parts = reference.rsplit("@", 1)[0].split("/")
    return "/".join(parts[-2:]) if len(parts) >= 3 else ""


def _index_first(digests: Iterable[str], images: Mapping[str, Obj]) -> list[str]:
    """Each index before the children it names, at any depth; otherwise by digest."""
    ordered: list[str] = []
    placed: set[str] = set()
    pending = set(digests)

    def parents_placed(digest: str) -> bool:
        return all(
            digest not in recorded_image(images.get(other)).children or other in placed
            for other in pending
            if other != digest
        )

    while pending:
        ready = sorted(d for d in pending if parents_placed(d)) or sorted(pending)[:1]
        for digest in ready:
            ordered.append(digest)
            placed.add(digest)
            pending.discard(digest)
    return ordered


def plan(
    streams: Iterable[Obj],
    images: Mapping[str, Obj],
    in_use: Mapping[str, tuple[str, ...]],
    policy: Policy,
    now: datetime,
) -> Plan:
    """The whole prune: ``images`` keyed by digest (``quota.imagerefs.images_by_digest``),
    ``in_use`` the digests workloads use and who uses each."""
    require_aware(now=now)
    before = list(streams)
    used = frozenset(in_use)
    statuses: dict[str, list[dict[str, Any]]] = {}
    revisions: list[Revision] = []
    after: list[Obj] = []
    for stream in before:
        new_tags, removed = prune_history(stream, policy, now, used)
        if removed:
            statuses[_repository(stream)] = new_tags
            revisions += removed
            stream = _with_tags(stream, new_tags)
        after.append(stream)

    referenced = referenced_images(after, images)
    young = {
        digest
        for digest, image in images.items()
        if _young(metadata(image).get("creationTimestamp"), now, policy)
    }
    kept = with_children(referenced | used | young, images)
    removed_digests = _index_first(set(images) - kept, images)

    kept_blobs = set(blob_sizes(kept, images))
    holders = _repositories_of(before, images)
    counted: set[str] = set()
    removals: list[ImageRemoval] = []
    for digest in removed_digests:
        freed = 0
        for blob, size in blob_sizes([digest], images).items():
            if blob not in kept_blobs and blob not in counted:
                counted.add(blob)
                freed += size
        removals.append(
            ImageRemoval(
                digest,
                str(metadata(images[digest]).get("name", "")),
                tuple(sorted(holders.get(digest, ()))),
                freed,
            )
        )
    # What only a keep rule saves: the Images the count alone would leave unreferenced.
    by_count = Policy(policy.keep_tag_revisions, timedelta(0))
    counted_only = referenced_images(
        [_with_tags(s, prune_history(s, by_count, now, frozenset())[0]) for s in before], images
    )
    return Plan(
        revisions=tuple(revisions),
        statuses=statuses,
        images=tuple(removals),
        kept=_kept(images, counted_only, used, young, in_use),
        freed_bytes=sum(removal.freed_bytes for removal in removals),
        manifests=tuple(
            (repository, removal.digest)
            for removal in removals
            for repository in removal.repositories
        ),
    )


def _with_tags(stream: Obj, tags: list[dict[str, Any]]) -> Obj:
    return {**stream, "status": {**mapping(stream.get("status")), "tags": tags}}


def _kept(
    images: Mapping[str, Obj],
    referenced: frozenset[str],
    used: frozenset[str],
    young: set[str],
    in_use: Mapping[str, tuple[str, ...]],
) -> tuple[Kept, ...]:
    """The Images only a keep rule saves: ``referenced`` is what the streams reference
    once the history is cut to the count alone (a stream's reference needs no saying)."""
    kept: list[Kept] = []
    for digest in sorted(set(images) - referenced):
        if digest in used:
            kept.append(Kept(digest, "used by " + ", ".join(in_use[digest])))
        elif digest in young:
            kept.append(Kept(digest, "younger than --keep-younger-than"))
    return tuple(kept)
