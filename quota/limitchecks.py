"""Limit verdicts and their messages, which users read in kubectl and registries match.

A message reads ``ImageStream "<name>" is forbidden: requested usage of <resource> exceeds
the maximum limit per <type> (<requested> > <max>) set by LimitRange "<lr>"``, sizes as
binary quantities; ``exceeds the maximum limit`` is the substring registries look for.

The subject of every limit message is the ImageStream, also for ``alauda.io/Image``
storage: on a push the user knows the repository, not the digest of the manifest the
client just built, and on a kubectl write the ImageStream is the object being refused.
When several limits are exceeded at once every one is reported, each as a complete
contract sentence, joined with ``"; "``, so a registry matching substrings finds each.

An image whose size cannot be known (no Image object describes it, its Image records no
size, or the Image could not be read) is never let past an ``alauda.io/Image`` storage
limit: the write is denied retryably (503), since the registry creates an Image before it
tags it and a retry finds it. Without a storage limit its size does not matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from quota.decision import Cause, Decision
from quota.limits import EffectiveLimits, Limit
from quota.measure import StreamCounts, StreamUsage, recorded_image_size
from quota.push import Push
from quota.resources import (
    IMAGE_STORAGE,
    STREAM_IMAGES,
    STREAM_TAGS,
    LimitKey,
    format_resource_value,
)

IMAGE_STREAM_KIND: Final = "ImageStream"
CAUSES: Final[Mapping[LimitKey, Cause]] = {
    IMAGE_STORAGE: Cause.IMAGE_STORAGE_LIMIT,
    STREAM_TAGS: Cause.IMAGE_TAGS_LIMIT,
    STREAM_IMAGES: Cause.IMAGES_LIMIT,
}
"""The cause a denial names for each limit it reports first."""


def limit_exceeded_message(
    kind: str,
    name: str,
    key: LimitKey,
    requested: int | Decimal,
    maximum: int | Decimal,
    limit_range: str,
) -> str:
    """``<Kind> "<name>" is forbidden: requested usage of <resource> exceeds the maximum
    limit per <type> (<requested> > <max>) set by LimitRange "<lr>"``."""
    req = format_resource_value(key.resource, requested)
    top = format_resource_value(key.resource, maximum)
    return (
        f'{kind} "{name}" is forbidden: requested usage of {key.resource} exceeds the '
        f'maximum limit per {key.type} ({req} > {top}) set by LimitRange "{limit_range}"'
    )


@dataclass(frozen=True)
class Violation:
    """One exceeded limit, with the message the user sees for it."""

    key: LimitKey
    requested: int
    maximum: Decimal
    limit_range: str
    message: str

    @property
    def cause(self) -> Cause:
        return CAUSES[self.key]


def exceeds(old: int | None, new: int, maximum: int | Decimal) -> bool:
    """The "may shrink, may not grow past the limit" rule.

    A count above the limit is refused only when it grows: a stream already over the limit
    (the limit was lowered after it filled up) may be edited while the count stays or
    shrinks, so users can clean up. ``old`` is None for a create.
    """
    return new > maximum and (old is None or new > old)


def _violation(kind: str, name: str, key: LimitKey, requested: int, limit: Limit) -> Violation:
    message = limit_exceeded_message(kind, name, key, requested, limit.maximum, limit.limit_range)
    return Violation(key, requested, limit.maximum, limit.limit_range, message)


def stream_violations(
    name: str, old: StreamCounts | None, new: StreamCounts, limits: EffectiveLimits
) -> tuple[Violation, ...]:
    """The ``alauda.io/ImageStream`` limits an update from ``old`` to ``new`` breaks."""
    found: list[Violation] = []
    for key, old_count, new_count in (
        (STREAM_TAGS, None if old is None else old.tags, new.tags),
        (STREAM_IMAGES, None if old is None else old.images, new.images),
    ):
        limit = limits.get(key)
        if limit is not None and exceeds(old_count, new_count, limit.maximum):
            found.append(_violation(IMAGE_STREAM_KIND, name, key, new_count, limit))
    return tuple(found)


def image_size_violations(name: str, size: int, limits: EffectiveLimits) -> tuple[Violation, ...]:
    """The ``alauda.io/Image`` storage limit broken by one image of ``size`` bytes.

    ``name`` is the ImageStream receiving the image (see the module docstring). Size has no
    "already over" exemption: each new image is judged on its own.
    """
    limit = limits.get(IMAGE_STORAGE)
    if limit is None or size <= limit.maximum:
        return ()
    return (_violation(IMAGE_STREAM_KIND, name, IMAGE_STORAGE, size, limit),)


def verdict_of(*violation_groups: tuple[Violation, ...]) -> Decision:
    """Allowed when no group holds a violation, else a denial reporting all, in order; its
    cause is the first one's."""
    found = [violation for group in violation_groups for violation in group]
    if not found:
        return Decision.allow()
    return Decision.deny("; ".join(violation.message for violation in found), found[0].cause)


class Unsized(Enum):
    """Why an image's size is not known, in the words of the retryable denial."""

    NO_IMAGE = "no Image object describes it"
    NO_SIZE = "its Image records no size"
    UNREAD = "its Image could not be read"


ImageSize = int | Unsized
"""An image's size in bytes, or why it is not known."""


def size_of(image: Mapping[str, Any] | None) -> ImageSize:
    """The size of the Image object ``image`` (None: there is none), measured as
    ``quota.measure.recorded_image_size`` measures it; where an Image is read, once."""
    if image is None:
        return Unsized.NO_IMAGE
    size = recorded_image_size(image)
    return Unsized.NO_SIZE if size is None else size


def images_to_look_up(sizes: Mapping[str, ImageSize], limits: EffectiveLimits) -> tuple[str, ...]:
    """Digests, in order, whose size a storage limit needs and ``sizes`` does not give;
    none when no ``alauda.io/Image`` storage limit applies (sizes do not matter then)."""
    if limits.get(IMAGE_STORAGE) is None:
        return ()
    return tuple(_unsized(sizes))


def _unsized(sizes: Mapping[str, ImageSize]) -> dict[str, Unsized]:
    """The digests of ``sizes`` whose size is not known, in digest order, and why."""
    return {d: size for d, size in sorted(sizes.items()) if isinstance(size, Unsized)}


def image_unknown_message(unknown: list[str], why: str, limit: Limit) -> str:
    """Names the first digest whose size is unknown, why, and how many more there are."""
    more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
    return (
        f"the size of image {unknown[0]}{more} is not known yet ({why}), so the "
        f"{IMAGE_STORAGE.resource} limit per {IMAGE_STORAGE.type} set by LimitRange "
        f'"{limit.limit_range}" cannot be checked; retry'
    )


def check_stream_write(
    name: str,
    old: StreamCounts | None,
    new: StreamCounts,
    sizes: Mapping[str, ImageSize],
    limits: EffectiveLimits,
) -> Decision:
    """Verdict on an ImageStream create (``old`` None) or update of ``spec`` or ``status``,
    from the counts of the stream before and after (``quota.measure.stream_usage``).

    ``sizes`` maps each digest the write adds to the stream to its image's size, or why it
    is not known. Exceeded limits are reported in order (image sizes by digest,
    then tags and images); failing those, a size the storage limit needs but cannot get is
    a retryable denial (see the module docstring).
    """
    size_violations = tuple(
        violation
        for digest in sorted(sizes)
        if not isinstance(size := sizes[digest], Unsized)
        for violation in image_size_violations(name, size, limits)
    )
    verdict = verdict_of(size_violations, stream_violations(name, old, new, limits))
    storage = limits.get(IMAGE_STORAGE)
    unknown = _unsized(sizes)
    if not verdict.allowed or storage is None or not unknown:
        return verdict
    why = next(iter(unknown.values())).value
    return Decision.deny(
        image_unknown_message(list(unknown), why, storage), Cause.IMAGE_SIZE_UNKNOWN
    )


def check_push_limits(push: Push, usage: StreamUsage | None, limits: EffectiveLimits) -> Decision:
    """LimitRange verdict on a push: image size first, then the stream's tags and images.

    ``usage`` is what the repository's ImageStream holds, None when the repository is new
    (the ImageStream quota is charged separately, see quota.resourcequota). A push by
    digest (``tag`` None) is checked all the same: it can still add an image.
    """
    old = None if usage is None else usage.counts
    new = (usage or StreamUsage()).with_push(push.tag, push.digest).counts
    return verdict_of(
        image_size_violations(push.repository, push.image_size, limits),
        stream_violations(push.repository, old, new, limits),
    )
