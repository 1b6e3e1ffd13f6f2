"""Names of the LimitRange types and resources this service owns.

``alauda.io/Image`` bounds ``storage`` (one image: config plus distinct layers);
``alauda.io/ImageStream`` bounds ``alauda.io/image-tags`` (distinct tag names in spec and
status) and ``alauda.io/images`` (distinct image digests in the whole status history);
ResourceQuota ``alauda.io/imagestreams`` bounds the ImageStreams of a namespace, and
``alauda.io/image-storage`` the bytes of the distinct blobs its Images reference.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, NamedTuple

from quota.quantity import format_bytes, format_count, parse_limit_value

#: Prefix shared by every type and resource name this service owns.
ALAUDA_PREFIX: Final = "alauda.io/"

#: LimitRange item type bounding the size of one image.
LIMIT_TYPE_IMAGE: Final = "alauda.io/Image"
#: LimitRange item type bounding the tags and images of one ImageStream.
LIMIT_TYPE_IMAGE_STREAM: Final = "alauda.io/ImageStream"

#: Size of one image (config blob + distinct layers), per ``alauda.io/Image``.
RESOURCE_STORAGE: Final = "storage"
#: Distinct tag names of one ImageStream, per ``alauda.io/ImageStream``.
RESOURCE_IMAGE_TAGS: Final = "alauda.io/image-tags"
#: Distinct image digests in one ImageStream's history, per ``alauda.io/ImageStream``.
RESOURCE_IMAGES: Final = "alauda.io/images"
#: ResourceQuota ``spec.hard`` key: number of ImageStreams in a namespace.
RESOURCE_IMAGESTREAMS: Final = "alauda.io/imagestreams"
#: ResourceQuota ``spec.hard`` key: bytes of the distinct blobs (config and layers) the
#: namespace's Images reference, each digest counted once per namespace.
RESOURCE_IMAGE_STORAGE: Final = "alauda.io/image-storage"
#: The ResourceQuota resources this service counts, in the order they are written.
QUOTA_RESOURCES: Final = (RESOURCE_IMAGESTREAMS, RESOURCE_IMAGE_STORAGE)

#: The resources each alauda.io LimitRange type may name, in message order.
LIMIT_TYPE_RESOURCES: Final[dict[str, tuple[str, ...]]] = {
    LIMIT_TYPE_IMAGE: (RESOURCE_STORAGE,),
    LIMIT_TYPE_IMAGE_STREAM: (RESOURCE_IMAGE_TAGS, RESOURCE_IMAGES),
}

#: Resources that count objects and therefore take whole numbers only.
COUNT_RESOURCES: Final = frozenset({RESOURCE_IMAGE_TAGS, RESOURCE_IMAGES, RESOURCE_IMAGESTREAMS})

#: alauda.io resource names that have a meaning here (used to refuse them where they can't).
KNOWN_ALAUDA_RESOURCES: Final = frozenset({RESOURCE_IMAGE_TAGS, RESOURCE_IMAGES, *QUOTA_RESOURCES})


class LimitKey(NamedTuple):
    """One enforceable (LimitRange item type, resource) pair."""

    type: str
    resource: str


IMAGE_STORAGE: Final = LimitKey(LIMIT_TYPE_IMAGE, RESOURCE_STORAGE)
STREAM_TAGS: Final = LimitKey(LIMIT_TYPE_IMAGE_STREAM, RESOURCE_IMAGE_TAGS)
STREAM_IMAGES: Final = LimitKey(LIMIT_TYPE_IMAGE_STREAM, RESOURCE_IMAGES)

#: Every enforceable pair, in the order verdicts check them.
LIMIT_KEYS: Final = (IMAGE_STORAGE, STREAM_TAGS, STREAM_IMAGES)


def is_alauda_name(name: object) -> bool:
    """True for a string in the ``alauda.io/`` namespace (a type or a resource name)."""
    return isinstance(name, str) and name.startswith(ALAUDA_PREFIX)


def is_count_resource(resource: str) -> bool:
    """True when the resource counts objects (whole numbers only)."""
    return resource in COUNT_RESOURCES


def parse_resource_value(resource: str, value: object) -> Decimal:
    """Parse a limit/quota value for ``resource``: non-negative, whole for counts.

    Raises quota.quantity.InvalidQuantity with a field-error style ``detail``.
    """
    return parse_limit_value(value, integer=is_count_resource(resource))


def format_resource_value(resource: str, value: int | Decimal) -> str:
    """Format a value for messages: counts as integers, sizes as binary quantities."""
    return format_count(value) if is_count_resource(resource) else format_bytes(value)
