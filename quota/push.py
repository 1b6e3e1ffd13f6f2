"""One manifest pushed to one repository, as every door hands it to the push rules."""

from __future__ import annotations

from dataclasses import dataclass

from quota.measure import Manifest


@dataclass(frozen=True)
class Push:
    namespace: str
    repository: str
    tag: str | None
    """None for a push by digest."""
    digest: str
    media_type: str
    manifest: Manifest
