"""What an accepted push leaves in the Image API, as plain data: the Image object for a
pushed manifest (written from the one ``quota.push.Push`` the rules judged), and the
ImageStream status with the tag's new history entry.

OpenShift's registry records a push the same way: one cluster-scoped Image per manifest
digest (shared by every repository that holds it) and, per tag, a history of the images
it pointed at, newest first (``status.tags[].items[]``), which the limits count.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from quota.measure import Descriptor
from quota.names import IMAGE_API_VERSION
from quota.objects import mapping, metadata
from quota.push import Push
from quota.timestamps import format_rfc3339, require_aware

ANNOTATION_PUSHED_BY_DIGEST: Final = "image.alauda.io/pushed-by-digest-to"
"""On an Image the front door created for a push by digest: the ``<namespace>/<name>``
it was pushed to, where it is served by digest though no tag records it. A tag push's
Image never carries it: that image is served only once its tag is recorded, so a tag
refused after the Image was saved leaves nothing served."""


def image_object_name(digest: str) -> str:
    """The standalone CRD's name for ``digest``: object names cannot hold ':', so
    ``sha256:<hex>`` becomes ``sha256-<hex>`` (the aggregated Image API names Images
    after the digest itself; the caches find both through ``dockerImageReference``)."""
    return digest.replace(":", "-", 1)


def image_reference(registry: str, repository: str, digest: str) -> str:
    """``<registry host>/<namespace>/<name>@<digest>``: where a client pulls the image."""
    return f"{registry}/{repository}@{digest}"


def _layers(layers: Sequence[Descriptor]) -> list[dict[str, Any]]:
    return [
        {"name": layer.digest, "size": layer.size, "mediaType": layer.media_type}
        for layer in layers
    ]


def _image_metadata(digest: str, pushed_by_digest_to: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": image_object_name(digest)}
    if pushed_by_digest_to is not None:
        meta["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: pushed_by_digest_to}
    return meta


def image_object(
    push: Push, reference: str, pushed_by_digest_to: str | None = None
) -> dict[str, Any]:
    """The Image that records ``push``; ``dockerImageMetadata.size`` is the size
    ``alauda.io/Image`` limits, as the rules judged it (``Push.image_size``).
    ``pushed_by_digest_to``: the repository of a push by digest (None for a tag push).

    An image index's Image lists its children; its size is its largest child's: a client
    pulls one platform's image, and that is the "one image" ``alauda.io/Image`` bounds
    (every child was judged against it), so a tag pointing at the index passes the same
    limit."""
    image: dict[str, Any] = {
        "apiVersion": IMAGE_API_VERSION,
        "kind": "Image",
        "metadata": _image_metadata(push.digest, pushed_by_digest_to),
        "dockerImageReference": reference,
        "dockerImageManifestMediaType": push.media_type,
        "dockerImageMetadata": {"size": push.image_size},
    }
    if push.children is not None:
        image["dockerImageManifests"] = [
            {
                "digest": child.digest,
                "mediaType": child.media_type,
                "manifestSize": child.size,
                **({"platform": dict(child.platform)} if child.platform else {}),
            }
            for child in push.children
        ]
        return image
    image["dockerImageLayers"] = _layers(push.manifest.layers)
    config = push.manifest.config
    if config is not None:
        image["dockerImageConfig"] = {"digest": config.digest, "size": config.size}
    return image


def status_with_tag_event(
    stream: Mapping[str, Any],
    tag: str,
    digest: str,
    reference: str,
    created: datetime,
) -> dict[str, Any] | None:
    """The stream's ``status`` with ``tag`` now pointing at ``digest`` (a new newest
    history entry), or None when it already does: a retried push records nothing twice.
    Other tags, and the tag's older entries, are kept as they are."""
    require_aware(created=created)
    status = copy.deepcopy(dict(mapping(stream.get("status"))))
    raw_tags = status.get("tags")
    tags: list[Any] = list(raw_tags) if isinstance(raw_tags, list) else []
    event = {
        "created": format_rfc3339(created),
        "dockerImageReference": reference,
        "image": digest,
        "generation": metadata(stream).get("generation") or 1,
    }
    for index, entry in enumerate(tags):
        if isinstance(entry, dict) and entry.get("tag") == tag:
            raw_items = entry.get("items")
            items = list(raw_items) if isinstance(raw_items, list) else []
            newest = items[0] if items and isinstance(items[0], dict) else {}
            if newest.get("image") == digest:
                return None
            tags[index] = {**entry, "items": [event, *items]}
            break
    else:
        tags.append({"tag": tag, "items": [event]})
    status["tags"] = tags
    return status
