"""Which Images something still references, and the blobs they hold, from plain data.

Three features ask the same question of the Image API and must get one answer: the storage
quota (what a namespace's Images hold), the front door's deletes and the pruner (an Image
nothing references any more is deleted). An Image is referenced by a repository when its
ImageStream's status history names it, or when a push by digest to that repository marked
it (``ANNOTATION_PUSHED_BY_DIGEST``); an image index references its children, at any depth,
so the Images of an index's platforms live as long as the index does.

Images arrive as decoded objects keyed by digest (``images_by_digest``); a missing or
malformed one references nothing and holds nothing, so one broken object never stops a
recount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from quota.measure import Descriptor, stream_image_digests
from quota.objects import Obj, mapping, metadata
from quota.served import recorded_image


def image_digest(image: Mapping[str, Any]) -> str | None:
    """The manifest digest an Image records: after the ``@`` of its
    ``dockerImageReference``, else its name (``sha256-<hex>`` in the standalone CRD, the
    digest itself in the aggregated API)."""
    reference = image.get("dockerImageReference")
    if isinstance(reference, str) and "@" in reference:
        return reference.rsplit("@", 1)[1] or None
    name = metadata(image).get("name")
    if not isinstance(name, str) or not name:
        return None
    if ":" in name:
        return name
    algorithm, _, encoded = name.partition("-")
    return f"{algorithm}:{encoded}" if encoded else None


def images_by_digest(images: Iterable[Obj]) -> dict[str, Obj]:
    """Images keyed by the digest they record; unreadable ones are left out."""
    keyed: dict[str, Obj] = {}
    for image in images:
        digest = image_digest(image)
        if digest is not None:
            keyed[digest] = image
    return keyed


def pushed_by_digest_to(image: Mapping[str, Any] | None) -> str:
    """The ``<namespace>/<name>`` a push by digest recorded ``image`` for, or ``""``."""
    return recorded_image(image).pushed_by_digest


def with_children(roots: Iterable[str], images: Mapping[str, Obj]) -> frozenset[str]:
    """``roots`` and, for each index among them, its children at any depth (a cycle, which
    no registry can store but a hand-written Image can claim, ends where it repeats)."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        digest = pending.pop()
        if digest in seen:
            continue
        seen.add(digest)
        pending.extend(recorded_image(images.get(digest)).children - seen)
    return frozenset(seen)


def namespace_images(
    namespace: str, streams: Iterable[Obj], images: Mapping[str, Obj]
) -> frozenset[str]:
    """The digests of the Images ``namespace`` references: its streams' history, the
    pushes by digest to its repositories, and their children."""
    roots: set[str] = set()
    for stream in streams:
        if metadata(stream).get("namespace") == namespace:
            roots |= stream_image_digests(stream)
    prefix = f"{namespace}/"
    roots |= {
        digest for digest, image in images.items() if pushed_by_digest_to(image).startswith(prefix)
    }
    return with_children(roots, images)


def referenced_images(streams: Iterable[Obj], images: Mapping[str, Obj]) -> frozenset[str]:
    """The digests of every Image some repository in the cluster references."""
    roots: set[str] = set()
    for stream in streams:
        roots |= stream_image_digests(stream)
    roots |= {digest for digest, image in images.items() if pushed_by_digest_to(image)}
    return with_children(roots, images)


def image_blobs(image: Mapping[str, Any] | None) -> tuple[Descriptor, ...]:
    """The blobs one Image records itself: its config and layers (an index records none:
    its children's Images hold them)."""
    body = mapping(image)
    blobs: list[Descriptor] = []
    config = mapping(body.get("dockerImageConfig"))
    config_size = _size(config.get("size"))
    if isinstance(config.get("digest"), str) and config_size is not None:
        blobs.append(Descriptor(config["digest"], config_size))
    layers = body.get("dockerImageLayers")
    for layer in layers if isinstance(layers, list) else []:
        entry = mapping(layer)
        size = _size(entry.get("size"))
        if isinstance(entry.get("name"), str) and size is not None:
            blobs.append(Descriptor(entry["name"], size, str(entry.get("mediaType") or "")))
    return tuple(blobs)


def blob_sizes(digests: Iterable[str], images: Mapping[str, Obj]) -> dict[str, int]:
    """Each distinct blob the Images ``digests`` name hold, at the largest size recorded
    for it: one digest is stored once, however many images share it."""
    sizes: dict[str, int] = {}
    for digest in digests:
        for blob in image_blobs(images.get(digest)):
            sizes[blob.digest] = max(blob.size, sizes.get(blob.digest, 0))
    return sizes


def _size(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
