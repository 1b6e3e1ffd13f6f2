"""What the registry tag reconciler reads, faked: the registry's tags, and the streams
as the watch cache and the API server each hold them; its tests and its wiring's share
them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Registry:
    def __init__(self, tags: dict[str, list[str]]) -> None:
        self.tags_of = tags
        self.deleted: list[tuple[str, str]] = []
        self.fail: Exception | None = None

    def tags(self, repository: str) -> Sequence[str]:
        if self.fail is not None:
            raise self.fail
        return list(self.tags_of.get(repository, []))

    def delete_tag(self, repository: str, tag: str) -> bool:
        self.deleted.append((repository, tag))
        present = tag in self.tags_of.get(repository, [])
        if present:
            self.tags_of[repository].remove(tag)
        return present


class Streams:
    """The watch cache (``get``) and the API server (``stream``), apart."""

    def __init__(self) -> None:
        self.cached: dict[str, dict[str, Any]] = {}
        self.live: dict[str, dict[str, Any]] = {}
        self.live_reads = 0
        self.fail: Exception | None = None

    def get(self, key: str) -> dict[str, Any] | None:
        return self.cached.get(key)

    def stream(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.live_reads += 1
        if self.fail is not None:
            raise self.fail
        return self.live.get(f"{namespace}/{name}")
