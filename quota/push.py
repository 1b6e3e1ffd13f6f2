"""One manifest pushed to one repository, parsed once: the value every door hands the push
rules, and the front door writes its Image from.

The front door builds it from the manifest PUT (and, for an image index, from each child
manifest it reads back from the registry); PushReview from the body a registry sends. The
rules judge it and ``quota.pushrecords`` turns it into the Image object: no second view of
the manifest exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quota.measure import Manifest


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

    @property
    def image_size(self) -> int:
        """The size ``alauda.io/Image`` storage judges: the image's, or an index's largest
        child's (a client pulls one platform's image, and every child must fit)."""
        if self.children is None:
            return self.manifest.size
        return max((child.manifest.size for child in self.children), default=0)
