"""Slots for large manifests, taken by the bytes a client has actually sent and shared
fairly between namespaces, so that no client, and no one namespace, can keep the others'
manifest pushes out.

A hostile 4 MiB manifest costs some 100 MiB while parsed, so a worker handles only so
many large ones at once (``serving.httpjson.LARGE_BODY_SLOTS``). A slot is taken only once
the body is in (``frontdoor.routes`` receives it first, under a short deadline of
its own): a Content-Length is a claim, and a client that claims 100 KB and sends one byte
holds nothing. And one namespace holds at most ``NAMESPACE_SHARE`` of the slots, so its
pushes, however many, always leave another namespace a slot.

Received before any slot, bodies are bounded in memory on their own: the bytes a worker
holds of manifest bodies, from their arrival to their answer, are counted as they arrive
(``HELD_BYTES``, with the same share per namespace), so a trickle holds what it sent and
a flood of fast large bodies from one namespace leaves room for another's.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from frontdoor.manifests import MAX_MANIFEST_BYTES
from serving.httpjson import (
    LARGE_BODY_SLOTS,
    LARGE_BODY_WAIT_SECONDS,
    SMALL_BODY_BYTES,
    ServerBusy,
)

NAMESPACE_SHARE: Final = 0.5
"""The share of a worker's large-manifest slots one namespace may hold at once (at least
one): with the default two slots, one each, so a namespace pushing many large manifests
waits for its own slot while another's finds the second free."""


HELD_BYTES: Final = 4 * MAX_MANIFEST_BYTES
"""Bytes of manifest bodies one worker holds at once (16 MiB: four of the largest), where
its threads alone would have let 64 x 4 MiB arrive; a namespace holds at most half, which
still fits two of the largest."""


def namespace_slots(slots: int) -> int:
    return max(1, int(slots * NAMESPACE_SHARE))


class ManifestGate:
    """Bounds the large manifests a worker handles at once, across its threads, with at
    most ``namespace_slots(slots)`` of them from one namespace."""

    def __init__(
        self,
        *,
        slots: int = LARGE_BODY_SLOTS,
        wait_seconds: float = LARGE_BODY_WAIT_SECONDS,
        small_bytes: int = SMALL_BODY_BYTES,
        held_bytes: int = HELD_BYTES,
    ) -> None:
        self._slots = slots
        self._per_namespace = namespace_slots(slots)
        self._wait_seconds = wait_seconds
        self._small_bytes = small_bytes
        self._held: Counter[str] = Counter()
        self._bytes = held_bytes
        self._bytes_per_namespace = int(held_bytes * NAMESPACE_SHARE)
        self._bytes_held: Counter[str] = Counter()
        self._changed = threading.Condition()

    def _wait_until(self, free: Callable[[], bool], what: str) -> None:
        """Wait (holding ``_changed``) until ``free()``, or :class:`ServerBusy`."""
        deadline = time.monotonic() + self._wait_seconds
        while not free():
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerBusy(f"no room for {what} within {self._wait_seconds:g} s")
            self._changed.wait(left)

    @contextmanager
    def holding(self, namespace: str) -> Iterator[Callable[[int], None]]:
        """Count a manifest body's bytes held by this worker while the block runs: the
        block calls the function it gets for each chunk as it arrives, which waits for
        room or raises :class:`ServerBusy`; all of it is given back at the end."""
        taken = 0

        def take(size: int) -> None:
            nonlocal taken

            def free() -> bool:
                return (
                    self._bytes_held.total() + size <= self._bytes
                    and self._bytes_held[namespace] + size <= self._bytes_per_namespace
                )

            with self._changed:
                self._wait_until(free, f"the manifest bodies of {namespace}")
                self._bytes_held[namespace] += size
                taken += size

        try:
            yield take
        finally:
            with self._changed:
                self._bytes_held[namespace] -= taken
                if not self._bytes_held[namespace]:
                    del self._bytes_held[namespace]
                self._changed.notify_all()

    def _free_for(self, namespace: str) -> bool:
        return self._held.total() < self._slots and self._held[namespace] < self._per_namespace

    @contextmanager
    def admit(self, namespace: str, received_bytes: int) -> Iterator[None]:
        """Hold a slot for a manifest of ``received_bytes`` (small ones need none);
        :class:`ServerBusy` if none frees for ``namespace`` within the wait."""
        if received_bytes <= self._small_bytes:
            yield
            return
        with self._changed:
            self._wait_until(lambda: self._free_for(namespace), f"a large manifest of {namespace}")
            self._held[namespace] += 1
        try:
            yield
        finally:
            with self._changed:
                self._held[namespace] -= 1
                if not self._held[namespace]:
                    del self._held[namespace]
                self._changed.notify_all()
