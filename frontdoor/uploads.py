"""Blob uploads, bounded before a manifest is ever judged.

A manifest PUT is judged and charged, but the blobs come first, and without a bound a
client with push rights could fill the registry's storage with uploads no manifest will
ever name. Two rules, after OpenShift's registry (which checks each blob against the
namespace's image limit, ``quotarestrictedblobstore.go``), applied to uploads as they
stream rather than at commit, so the bytes never reach the registry:

- An upload may start (POST) only in a repository the caller could create: its
  ImageStream exists, or the ``alauda.io/imagestreams`` quota has room for it (the rule
  and message of a push into a new repository).
- No blob is larger than the namespace's largest allowed image (the smallest
  ``alauda.io/Image`` storage max of its LimitRanges; none, no bound): every byte of the
  upload session counts (a PATCH goes on from the session's offset), and the request to
  the registry is cut the moment its next chunk would pass the bound. Raising from the
  body iterator makes urllib3 drop the connection, so the registry never completes the
  blob; the upload left behind is reclaimed by the registry's upload purging. A
  cross-repository mount streams nothing, so the blob it would link is measured first
  (its size by digest, ``blobsizes``): one over the bound is not mounted, and the plain
  upload that starts instead is bounded as it streams.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, Protocol

from frontdoor import distribution as oci
from frontdoor.blobsizes import BlobSizes
from frontdoor.pushes import PushDenied
from frontdoor.readonly import read_only_refusal
from frontdoor.records import RecordFailed
from frontdoor.upstream import UpstreamResponse
from quota.decision import Cause, Decision
from quota.limitchecks import IMAGE_STREAM_KIND, limit_exceeded_message
from quota.limits import Limit
from quota.resources import IMAGE_STORAGE
from serving.httpjson import brief

MAX_OFFSET: Final = 2**63 - 1
"""The largest offset a registry reads: distribution parses a range with
``strconv.ParseInt(s, 10, 64)`` (registry/handlers/helpers.go), an int64."""
MAX_OFFSET_DIGITS: Final = len(str(MAX_OFFSET))
"""Digits of an int64 (19): a longer offset is never parsed, as no registry could hold it
and Python refuses to read an int past 4,300 digits."""
_OFFSET: Final = rf"([0-9]{{1,{MAX_OFFSET_DIGITS}}})"
CONTENT_RANGE: Final = re.compile(rf"{_OFFSET}-{_OFFSET}")
"""A chunk's ``Content-Range`` (``<start>-<end>``, no unit: the distribution spec's form),
in ASCII digits, as ``ParseInt`` reads them."""
RANGED_METHODS: Final = frozenset({"PATCH", "PUT"})
"""The upload requests whose ``Content-Range`` distribution reads (PatchBlobData and
PutBlobUploadComplete), when a Content-Length comes with it."""
UPLOAD_RANGE: Final = re.compile(rf"0-{_OFFSET}")
"""An upload's status ``Range``: the bytes the session holds (distribution's
``blobUploadResponse``). It says ``0-0`` for none and for one byte alike: read as none,
the count is at most one byte short."""


class UploadRules(Protocol):
    def upload_room(self, namespace: str, repository: str) -> Decision: ...
    def largest_image(self, namespace: str) -> Limit | None: ...


class Status(Protocol):
    def request(
        self, method: str, path_and_query: str, headers: Mapping[str, str]
    ) -> UpstreamResponse: ...


def too_large(name: str, size: int, limit: Limit) -> str:
    """The contract's storage limit message for a blob of at least ``size`` bytes."""
    return limit_exceeded_message(
        IMAGE_STREAM_KIND, name, IMAGE_STORAGE, size, limit.maximum, limit.limit_range
    )


def _too_large(name: str, size: int, limit: Limit) -> PushDenied:
    return PushDenied(Decision.deny(too_large(name, size, limit), Cause.IMAGE_STORAGE_LIMIT))


def bounded(chunks: Iterable[bytes], offset: int, limit: Limit, name: str) -> Iterator[bytes]:
    """``chunks`` as they come, until one would take the session (``offset`` bytes so far)
    past ``limit``: then ``PushDenied``, before that chunk is passed on."""
    total = offset
    for chunk in chunks:
        total += len(chunk)
        if total > limit.maximum:
            raise _too_large(name, total, limit)
        yield chunk


def chunk_start(route: oci.Route, content_range: str | None, length: int | None) -> int | None:
    """Where a chunk's ``Content-Range`` says it starts, or None when the registry reads
    none on this request (a POST, no range, or no Content-Length beside it).

    BLOB_UPLOAD_INVALID (416) for a range the registry could not read: distribution's own
    answer to one is a 500 (its ``ErrorCodeUnknown``), and a range past the 4,300 digits
    Python parses would be ours."""
    given = (content_range or "").strip()
    if route.kind != "upload" or route.method not in RANGED_METHODS or not given or length is None:
        return None
    match = CONTENT_RANGE.fullmatch(given)
    if match is None or int(match[1]) > MAX_OFFSET or int(match[2]) > MAX_OFFSET:
        raise oci.range_invalid(
            f"Content-Range {brief(given)} is not <start>-<end> with offsets of at most"
            f" {MAX_OFFSET_DIGITS} digits, at most {MAX_OFFSET} (an int64)"
        )
    return int(match[1])


def held_back(chunks: Iterable[bytes], read_only: Callable[[], bool]) -> Iterator[bytes]:
    """``chunks`` one behind: the last is passed on only after the switch is asked again,
    and while the registry is read-only the read-only refusal comes instead, so the
    registry never has the whole body and never completes the blob."""
    previous: bytes | None = None
    for chunk in chunks:
        if previous is not None:
            yield previous
        previous = chunk
    if read_only():
        raise read_only_refusal()
    if previous is not None:
        yield previous


class Uploads:
    def __init__(
        self,
        rules: UploadRules,
        registry: Status,
        sizes: BlobSizes | None = None,
        read_only: Callable[[], bool] = lambda: False,
    ) -> None:
        """``sizes``: the registry's blob sizes (by default asked of ``registry``); the
        worker shares one with its manifest PUTs, so a layer is asked once;
        ``read_only``: the registry's read-only switch (``frontdoor.readonly``)."""
        self._rules = rules
        self._registry = registry
        self._sizes = sizes or BlobSizes(registry)
        self._read_only = read_only

    def committing(self, route: oci.Route, body: Iterator[bytes]) -> Iterator[bytes]:
        """The body of an upload's final PUT (the one that completes the blob), with the
        read-only switch asked again before it is sent and before its last chunk: the
        switch may be set while a long body streams, and a blob completed during a
        collection is swept with no manifest naming it."""
        if route.kind != "upload" or route.method != "PUT":
            return body
        if self._read_only():
            raise read_only_refusal()
        return held_back(body, self._read_only)

    def admit_start(self, route: oci.Route) -> None:
        """``PushDenied`` when no upload may start in the route's repository."""
        decision = self._rules.upload_room(route.namespace or "", route.name or "")
        if not decision.allowed:
            raise PushDenied(decision)

    def mount_fits(self, route: oci.Route, digest: str, source: str) -> bool:
        """Whether blob ``digest``, mounted from repository ``source``, is within the
        route's namespace's largest image: a mount links the blob with no byte streamed
        through the bound. A size the registry cannot say is no fit (the plain upload
        that follows is bounded); a blob it lacks in ``source`` is the registry's to
        refuse (it then starts a plain upload itself)."""
        limit = self._rules.largest_image(route.namespace or "")
        if limit is None:
            return True
        try:
            size = self._sizes.size(source, digest)
        except RecordFailed:
            return False
        return size is None or size <= limit.maximum

    def bound(
        self,
        route: oci.Route,
        query: str,
        content_range: str | None,
        body: Iterator[bytes],
        length: int | None,
    ) -> Iterator[bytes]:
        """The body of an upload request, bounded at the namespace's largest image.

        BLOB_UPLOAD_INVALID first, limit or none, for a ``Content-Range`` the registry
        could not read (:func:`chunk_start`). ``PushDenied`` at once when the client's
        own Content-Length says it would pass the bound; otherwise the body is cut while
        it streams."""
        start = chunk_start(route, content_range, length)
        limit = self._rules.largest_image(route.namespace or "")
        if limit is None or length == 0:
            return body
        offset = self._offset(route, query, start)
        name = route.name or ""
        if length is not None and offset + length > limit.maximum:
            raise _too_large(name, offset + length, limit)
        return bounded(body, offset, limit, name)

    def _offset(self, route: oci.Route, query: str, start: int | None) -> int:
        """Bytes the upload session holds before this request's body.

        A POST starts a session. A PATCH's ``Content-Range`` (``start``) says where its
        chunk goes when it comes with a Content-Length: distribution refuses the chunk
        (416) unless it starts at the session's size, so the client cannot understate it. Otherwise
        the registry is asked (the upload's status), with the client's query, which
        carries the session's signed state."""
        if route.kind == "upload_start":
            return 0
        if route.method == "PATCH" and start is not None:
            return start
        path = oci.route_path(route) + (f"?{query}" if query else "")
        answer = self._registry.request("GET", path, {})
        try:
            for _ in answer.body:  # a status has no body; read it so the connection is reused
                pass
        finally:
            answer.close()
        held = next((v for k, v in answer.headers if k.lower() == "range"), "")
        status = UPLOAD_RANGE.fullmatch(held.strip())
        if status is None or answer.status >= 300:
            # No status (an unknown session, say): the registry refuses the request
            # itself; this request's own bytes are still bounded.
            return 0
        last = int(status[1])
        return last + 1 if last > 0 else 0
