"""Deletes through the front door (the distribution spec's content management, end-9 and
end-10), written in the order that keeps the registry and the Image API consistent.

A manifest, by tag or by digest:

1. Read the ImageStream live (and, for a digest, every Image): a tag the stream does not
   hold, or a digest the repository does not record, is 404 MANIFEST_UNKNOWN; a digest
   the repository holds only as an index's child is DENIED (the index would break).
2. Take the tag (status history and ``spec.tags``) or every history entry of the digest
   out of the stream (``quota.deletes``), with the resourceVersion read: a push that wrote
   since makes the delete read and decide again. From here the front door serves it no
   more: reads and tag lists answer from the stream.
3. By tag: delete the tag in the registry.
4. Read every stream and Image live; delete each Image no repository references any more
   (``quota.imagerefs``), as read (uid and resourceVersion: one a push marked since is
   kept); take the push-by-digest mark off a kept Image whose digest was deleted here.
5. Delete from this repository in the registry, by digest, each manifest it no longer
   references (an index's children with it).

Metadata first, registry second: a failure after step 2 leaves at most registry content
the metadata no longer records (a tag the registry tag reconciler deletes, manifests and
blobs the registry's garbage collection reclaims) and Images nothing references (the
pruner's); it is logged, and the delete is answered 202 all the same, because for every
reader it has happened. A retry finds the tag gone (404); every step is idempotent.

A blob is forwarded to the registry (its own answer, 405 UNSUPPORTED where deletes are
off, passes to the client), unless an Image the repository references holds it: then it
is DENIED, since unlinking it would break pulls of a recorded image.

The quota follows the metadata: the usage controller recounts what the streams hold.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final, Protocol

from urllib3.exceptions import HTTPError

from frontdoor import distribution as oci
from frontdoor.deleterecords import Conflict
from frontdoor.records import Denied, RecordFailed
from frontdoor.upstream import UpstreamResponse
from kube.logfields import fields
from quota.deletes import (
    StreamChange,
    blob_holders,
    cleanup,
    holding_index,
    holds_tag,
    repository_images,
    without_digest,
    without_mark,
    without_tag,
)
from quota.imagerefs import images_by_digest, pushed_by_digest_to
from quota.objects import Obj
from serving.httpjson import brief

log = logging.getLogger(__name__)

CONFLICT_RETRIES: Final = 5
"""Stream writes lost to a concurrent push, each followed by a fresh read and decision:
as many as a push's own tag write tries (``frontdoor.records.CONFLICT_RETRIES``)."""
MAX_HOLDERS_NAMED: Final = 3
"""Images a refused blob delete names: enough to act on, short enough to read."""


class Records(Protocol):
    def stream(self, namespace: str, name: str) -> Obj | None: ...


class Writes(Protocol):
    def write(self, stream: Obj, change: StreamChange) -> None: ...
    def streams(self) -> list[Obj]: ...
    def images(self) -> list[Obj]: ...
    def delete_image(self, image: Obj) -> bool: ...
    def drop_mark(self, image: Obj) -> None: ...


class Registry(Protocol):
    def request(
        self, method: str, path_and_query: str, headers: Mapping[str, str]
    ) -> UpstreamResponse: ...


class ManifestDeletes:
    def __init__(self, records: Records, writes: Writes, registry: Registry) -> None:
        self._records = records
        self._writes = writes
        self._registry = registry

    def delete_manifest(self, namespace: str, name: str, reference: str) -> None:
        """Steps 1 to 5 for a tag or a digest. Raises ``oci.RegistryError`` (404, DENIED),
        ``RecordFailed`` (the API server could not be asked: nothing was changed yet)."""
        repository = f"{namespace}/{name}"
        if ":" in reference:  # a digest: tags hold no ':'
            self._delete_digest(namespace, name, reference)
            return
        change = self._change(namespace, name, lambda s: _tag_change(s, repository, reference))
        self._registry_delete(repository, reference)
        self._collect(repository, change.removed, unmark=None)

    def _delete_digest(self, namespace: str, name: str, digest: str) -> None:
        repository = f"{namespace}/{name}"
        images = images_by_digest(self._writes.images())
        stream = self._records.stream(namespace, name)
        if digest not in repository_images(repository, stream, images):
            raise _unknown(repository, digest)
        index = holding_index(digest, repository, stream, images)
        if index is not None:
            raise oci.denied(
                f"manifest {digest} is part of image index {index} in {repository}: delete"
                " the index, which takes its children with it"
            )
        if stream is not None:
            self._change(namespace, name, lambda s: without_digest(s or {}, digest))
        marked = pushed_by_digest_to(images.get(digest)) == repository
        self._collect(repository, frozenset({digest}), unmark=digest if marked else None)

    def _change(self, namespace: str, name: str, decide: _Decide) -> StreamChange:
        """Step 2: read the stream, decide, write; again on a conflict."""
        for _ in range(CONFLICT_RETRIES):
            stream = self._records.stream(namespace, name)
            change = decide(stream)
            if not change.changed or stream is None:
                return change
            try:
                self._writes.write(stream, change)
                return change
            except Denied as err:
                raise oci.denied(err.decision.message) from None
            except Conflict:
                continue
        raise RecordFailed(f"deleting: {CONFLICT_RETRIES} conflicting writes in a row")

    def _collect(self, repository: str, removed: frozenset[str], unmark: str | None) -> None:
        """Steps 4 and 5; failures are logged (the delete has happened for readers)."""
        if not removed:
            return
        try:
            streams = self._writes.streams()
            images = images_by_digest(self._writes.images())
            marked = images.get(unmark) if unmark is not None else None
            if unmark is not None and marked is not None:
                images[unmark] = without_mark(marked)
            plan = cleanup(repository, removed, streams, images)
            for digest in plan.delete:
                if self._writes.delete_image(images[digest]):
                    log.info(
                        "deleted an Image no repository references",
                        extra=fields(repository=repository, digest=digest),
                    )
            if marked is not None and unmark not in plan.delete:
                self._writes.drop_mark(marked)
        except RecordFailed as err:
            log.warning("a delete left Images for the pruner: %s", err)
            return
        for digest in plan.unlink:
            self._registry_delete(repository, digest)

    def _registry_delete(self, repository: str, reference: str) -> None:
        """``DELETE`` of a tag or manifest in the registry; gone already is done."""
        path = f"/v2/{repository}/manifests/{reference}"
        try:
            answer = self._registry.request("DELETE", path, {})
            answer.close()
        except (HTTPError, OSError) as err:
            log.warning(
                "a delete left registry content for its reconciler and GC: %s",
                type(err).__name__,
                extra=fields(repository=repository, reference=reference),
            )
            return
        if answer.status >= 300 and answer.status != 404:
            log.warning(
                "the registry refused a delete: HTTP %s",
                answer.status,
                extra=fields(repository=repository, reference=reference),
            )

    def check_blob(self, namespace: str, name: str, digest: str) -> None:
        """DENIED while an Image the repository references holds the blob."""
        repository = f"{namespace}/{name}"
        stream = self._records.stream(namespace, name)
        images = images_by_digest(self._writes.images())
        holders = blob_holders(digest, repository, stream, images)
        if holders:
            named = ", ".join(holders[:MAX_HOLDERS_NAMED])
            more = len(holders) - MAX_HOLDERS_NAMED
            also = f" and {more} more" if more > 0 else ""
            raise oci.denied(
                f"blob {brief(digest)} is held by image {named}{also}, which repository"
                f" {repository} records: deleting it would break pulls of that image;"
                " delete the image's tags or manifest instead"
            )


class _Decide(Protocol):
    def __call__(self, stream: Obj | None, /) -> StreamChange: ...


def _unknown(repository: str, reference: str) -> oci.RegistryError:
    return oci.manifest_unknown(
        f"manifest {brief(reference)} is not recorded in repository {repository}: no such"
        " tag or image in its ImageStream"
    )


def _tag_change(stream: Obj | None, repository: str, tag: str) -> StreamChange:
    if stream is None or not holds_tag(stream, tag):
        raise _unknown(repository, tag)
    return without_tag(stream, tag)
