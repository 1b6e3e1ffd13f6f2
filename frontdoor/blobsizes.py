"""The sizes a manifest declares, checked against the blobs the registry holds.

Every limit and quota judges a push on the sizes its manifest declares, and distribution
checks only that each blob a manifest names exists, not its size: a 3 MiB layer declared
as 1000 bytes would pass a 1Mi limit and be recorded as 1 KiB. So before a push writes
anything, each blob is asked of the registry (a HEAD answers its size) and a declared
size that differs is refused, naming the field and both sizes.

A digest names its content, so its size never changes: sizes are cached by digest alone,
in a bounded LRU, and a layer shared by many images is asked once per worker. The cache
does not answer whether a blob is linked into this repository; the registry's own
manifest PUT still refuses a manifest naming a blob the repository lacks.

A registry on object storage answers a blob's HEAD with a redirect to the storage (on by
default for distribution's S3, GCS and Azure drivers), which carries no size, and a
presigned GET URL refuses a HEAD, so it is not followed: every push would fail, and the
answer names the registry setting that ends it (``storage.redirect.disable``), logged
once per worker rather than on every push.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Final, Protocol

from frontdoor import distribution as oci
from frontdoor.records import RecordFailed
from frontdoor.upstream import UpstreamResponse

log = logging.getLogger(__name__)

REDIRECT_SETTING: Final = "storage.redirect.disable: true"
"""The distribution setting that makes a blob HEAD answer its size (docs/install.md)."""
MAX_CACHED_SIZES: Final = 16_384
"""Digests whose size a worker remembers: an entry (a 71-character digest and an int) is
some 200 bytes, so about 3 MiB, the layers of a few thousand images."""


class Head(Protocol):
    def request(
        self, method: str, path_and_query: str, headers: Mapping[str, str]
    ) -> UpstreamResponse: ...


class RedirectedHead(RecordFailed):
    """The registry answered a blob's HEAD with a redirect: its configuration, not a
    passing fault, so the message says what to change."""

    def __init__(self, digest: str, status: int) -> None:
        super().__init__(
            f"the registry answered the HEAD of blob {digest} with a redirect (HTTP {status}),"
            f" which carries no size: its configuration must set {REDIRECT_SETTING}"
        )


class BlobSizes:
    """Blob sizes as the registry holds them, by digest; shared by a worker's threads."""

    def __init__(self, registry: Head, capacity: int = MAX_CACHED_SIZES) -> None:
        self._registry = registry
        self._capacity = capacity
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._redirect_logged = False

    def size(self, repository: str, digest: str) -> int | None:
        """The size of blob ``digest`` (asked in ``repository``), or None when the registry
        does not have it there. ``RecordFailed`` when the registry cannot say
        (:class:`RedirectedHead` when it redirects)."""
        with self._lock:
            if digest in self._sizes:
                self._sizes.move_to_end(digest)
                return self._sizes[digest]
        answer = self._registry.request("HEAD", f"/v2/{repository}/blobs/{digest}", {})
        try:
            for _ in answer.body:  # a HEAD has none; read to its end so the connection is reused
                pass
        finally:
            answer.close()
        if answer.status == 404:
            return None
        if 300 <= answer.status < 400:
            self._log_redirect(RedirectedHead(digest, answer.status))
        if answer.status != 200 or answer.length is None:
            raise RecordFailed(f"the registry's HEAD of blob {digest}: HTTP {answer.status}")
        with self._lock:
            self._sizes[digest] = answer.length
            self._sizes.move_to_end(digest)
            while len(self._sizes) > self._capacity:
                self._sizes.popitem(last=False)
        return answer.length

    def _log_redirect(self, err: RedirectedHead) -> None:
        """Raise ``err``, logging it the first time only: it repeats on every push until
        the registry is reconfigured."""
        with self._lock:
            first, self._redirect_logged = not self._redirect_logged, True
        if first:
            log.error("%s (docs/install.md, The front door)", err)
        raise err

    def check(self, repository: str, field: str, digest: str, declared: int) -> None:
        """MANIFEST_BLOB_UNKNOWN when the registry lacks the blob, MANIFEST_INVALID naming
        ``field`` and both sizes when it holds another size than declared."""
        held = self.size(repository, digest)
        if held is None:
            raise oci.manifest_blob_unknown(digest)
        if held != declared:
            raise oci.manifest_invalid(
                f"{field}.size is {declared}, but the registry holds {held} bytes for {digest}"
            )
