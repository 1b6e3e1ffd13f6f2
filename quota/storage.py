"""What ``alauda.io/image-storage`` counts, from plain data: the bytes of the distinct blobs
(config and layers) a namespace's Images reference, each digest once per namespace, and
the new bytes a push adds to that.

The Images a namespace references are ``quota.imagerefs``'s answer (its streams' history,
its pushes by digest, an index's children at any depth), the one the front door's deletes
and the pruner use too, so the quota frees exactly what they release. A blob shared by two
images of one namespace is stored once and counted once; one shared by two namespaces is
counted in each, as each could keep it alive alone (Harbor counts per project the same way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from quota.imagerefs import blob_sizes, namespace_images, with_children
from quota.measure import Descriptor
from quota.objects import Obj
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST

STREAM_HISTORY_FIELDS: Final[Mapping[str, Any]] = {
    "status": {"tags": [{"items": [{"image": True}]}]}
}
"""What the count reads of an ImageStream besides its identity (a cache's projection):
the digests of its status history."""
IMAGE_BLOB_FIELDS: Final[Mapping[str, Any]] = {
    "metadata": {"annotations": {ANNOTATION_PUSHED_BY_DIGEST: True}},
    "dockerImageReference": True,
    "dockerImageConfig": {"digest": True, "size": True},
    "dockerImageLayers": [{"name": True, "size": True}],
    "dockerImageManifests": [{"digest": True}],
}
"""What the count reads of an Image besides its identity: the digest it records, the
repository a push by digest marked, its blobs and an index's children (its config, history
and layer media types, kilobytes each, are not needed)."""


def namespace_blobs(
    namespace: str, streams: Iterable[Obj], images: Mapping[str, Obj]
) -> dict[str, int]:
    """Each distinct blob the Images of ``namespace`` hold, with its size.

    ``streams``: ImageStreams (those of other namespaces are ignored); ``images``: Images
    by the digest they record (``quota.imagerefs.images_by_digest``)."""
    return blob_sizes(namespace_images(namespace, streams, images), images)


def blobs_held(
    history: Iterable[str], pushed_by_digest: Iterable[str], images: Mapping[str, Obj]
) -> dict[str, int]:
    """``namespace_blobs`` from what a watch cache keeps instead of whole streams: the
    digests of the namespace's streams' history and of the Images pushed by digest to its
    repositories. ``images`` may look Images up lazily (an index): only those two sets and
    their children are read, not every Image in the cluster."""
    return blob_sizes(with_children({*history, *pushed_by_digest}, images), images)


def storage_used(blobs: Mapping[str, int]) -> int:
    """The bytes ``alauda.io/image-storage`` counts for a namespace holding ``blobs``."""
    return sum(blobs.values())


def new_bytes(pushed: Iterable[Descriptor], held: Mapping[str, int]) -> int:
    """The bytes a push adds to a namespace holding ``held``: its blobs (``Push.blobs()``,
    each digest once) that the namespace does not reference yet. A blob it already holds
    costs nothing more, whatever size the push declares for it."""
    return sum(
        blob.size for blob in {b.digest: b for b in pushed}.values() if blob.digest not in held
    )
