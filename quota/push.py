"""One manifest pushed to one repository, parsed once: the value every door hands the push
rules, and the front door writes its Image from.

The front door builds it from the manifest PUT (and, for an image index, from each child
manifest it reads back from the registry); PushReview from the body a registry sends. The
rules judge it and ``quota.pushrecords`` turns it into the Image object: no second view of
the manifest exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from quota.measure import Descriptor, Manifest


@dataclass(frozen=True)
class IndexChild:
    """One manifest an image index names: its descriptor, its platform as the index gives
    it (or None), and the image it describes, read from the registry."""

    digest: str
    media_type: str
    size: int
    """Bytes of the child manifest itself."""
    platform: Mapping[str, Any] | None
    manifest: Manifest
    """The image it describes; ``Manifest(None)`` when the child is itself an index."""
    children: tuple[IndexChild, ...] | None = None
    """A nested index's own children, in its order; None for an image manifest."""


def _leaves(manifest: Manifest, children: tuple[IndexChild, ...] | None) -> Iterator[Manifest]:
    if children is None:
        yield manifest
        return
    for child in children:
        yield from _leaves(child.manifest, child.children)


@dataclass(frozen=True)
class Push:
    namespace: str
    repository: str
    tag: str | None
    """None for a push by digest."""
    digest: str
    media_type: str
    manifest: Manifest
    """The image's config and layers; an index declares none (``Manifest(None)``)."""
    children: tuple[IndexChild, ...] | None = None
    """An image index's children, in the index's order; None for an image manifest (and
    for PushReview, whose body describes one image)."""

    def images(self) -> tuple[Manifest, ...]:
        """The image manifests this push names: itself, or every image an index holds at
        any depth (a child index contributes its own children), in the index's order."""
        return tuple(_leaves(self.manifest, self.children))

    @property
    def image_size(self) -> int:
        """The size ``alauda.io/Image`` storage judges: the image's, or an index's largest
        image's at any depth (a client pulls one platform's image, and each must fit)."""
        if self.children is None:
            return self.manifest.size
        return max((image.size for image in self.images()), default=0)

    def blobs(self) -> tuple[Descriptor, ...]:
        """Every distinct blob (config and layers) of every image this push names, each
        digest once at the largest size declared for it: what ``alauda.io/image-storage``
        counts, so misdeclaring a repeated blob cannot shrink the charge."""
        sizes: dict[str, Descriptor] = {}
        for image in self.images():
            named = ([] if image.config is None else [image.config]) + list(image.layers)
            for blob in named:
                known = sizes.get(blob.digest)
                if known is None or blob.size > known.size:
                    sizes[blob.digest] = blob
        return tuple(sizes.values())
