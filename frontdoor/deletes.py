"""Deletes through the front door (the distribution spec's content management, end-9 and
end-10), written in the order that keeps the registry and the Image API consistent.

A manifest, by tag or by digest:

1. Read the ImageStream live (and, for a digest, its Image live; the repository's other
   marks and its indexes' children from the cache, a child it lacks read live): a tag the
   stream does not hold, or a digest the repository does not record, is 404
   MANIFEST_UNKNOWN; a digest the repository holds only as an index's child is DENIED
   (the index would break).
2. Take the tag (status history and ``spec.tags``) or every history entry of the digest
   out of the stream (``quota.deletes``), with the resourceVersion read: a push that wrote
   since makes the delete read and decide again. From here the front door serves it no
   more: reads and tag lists answer from the stream.
3. By tag: delete the tag in the registry.
4. Read the stream again and each candidate (the digests taken out, their children) live;
   delete each Image no repository references any more (``quota.deletes.unreferenced``),
   as read (uid and resourceVersion: one a push marked since is kept); take the
   push-by-digest mark off a kept Image whose digest was deleted here.
5. Delete from this repository in the registry, by digest, each manifest it no longer
   references (an index's children with it).

Step 4 never lists the cluster's streams or Images (a list took about 1 ms per Image):
the caches propose, live reads confirm. The indexes listing a candidate come from the
Image cache's child index; the streams naming a candidate or one of those indexes, from
the stream cache, each proposal read again live before it counts. Before it trusts the
stream cache, the delete waits until the cache holds the stream at the resourceVersion
its own write was answered with: watch events arrive in resourceVersion order, so every
stream written before the delete's own write is in the cache then. The invariant: **a
cache that lags can only make the delete keep an Image**, never delete one a repository
references: a stream the cache has not caught up to within ``CACHE_WAIT_SECONDS`` keeps
every candidate (for the pruner), a stale proposal is read live and dropped, and a
candidate's own mark is read live. A delete that wrote no stream (a push by digest's
mark, the only reference) has no write to wait for: it lists the streams live instead.
The wait covers the streams, not the Image cache's index of children: an index pushed
and tagged while that watch lags behind the streams' is the one referrer it can miss (a
push in flight, as it was for the live lists, which a push could also follow).

Metadata first, registry second: a failure after step 2 leaves at most registry content
the metadata no longer records (a tag the registry tag reconciler deletes, manifests and
blobs the registry's garbage collection reclaims) and Images nothing references (the
pruner's); it is logged, and the delete is answered 202 all the same, because for every
reader it has happened. A retry finds the tag gone (404); every step is idempotent.

A blob is forwarded to the registry (its own answer, 405 UNSUPPORTED where deletes are
off, passes to the client), unless an Image the repository references holds it: then it
is DENIED, since unlinking it would break pulls of a recorded image. The repository's
stream is read live; its marks and Images come from the cache (an Image it lacks, live).

The quota follows the metadata: the usage controller recounts what the streams hold.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
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
    holding_index,
    holds_tag,
    repository_images,
    unreferenced,
    without_digest,
    without_mark,
    without_tag,
)
from quota.imagerefs import pushed_by_digest_to, with_children
from quota.measure import stream_image_digests
from quota.objects import Obj
from serving.httpjson import brief

log = logging.getLogger(__name__)

CONFLICT_RETRIES: Final = 5
"""Stream writes lost to a concurrent push, each followed by a fresh read and decision:
as many as a push's own tag write tries (``frontdoor.records.CONFLICT_RETRIES``)."""
MAX_HOLDERS_NAMED: Final = 3
"""Images a refused blob delete names: enough to act on, short enough to read."""
CACHE_WAIT_SECONDS: Final = 5.0
"""How long a delete waits for the stream cache to hold its own write: a watch event
arrives in milliseconds on a healthy watch; past this the watch is broken or relisting,
and the delete keeps its Images for the pruner rather than answer a client late."""


class Records(Protocol):
    def stream(self, namespace: str, name: str) -> Obj | None: ...


class Writes(Protocol):
    def write(self, stream: Obj, change: StreamChange) -> str: ...
    def streams(self) -> list[Obj]: ...
    def image(self, digest: str) -> Obj | None: ...
    def delete_image(self, image: Obj) -> bool: ...
    def drop_mark(self, image: Obj) -> None: ...


class Cached(Protocol):
    """What a delete asks of the front door's caches (``frontdoor.caches``): proposals,
    each confirmed live before it is acted on."""

    def images_by_digest(self) -> Mapping[str, Obj]: ...
    def marked(self, repository: str) -> list[str]: ...
    def parents(self, digest: str) -> list[str]: ...
    def streams_naming(self, digests: Iterable[str]) -> dict[str, list[tuple[str, str]]]: ...
    def wait_for_stream(
        self, namespace: str, name: str, resource_version: str, timeout: float
    ) -> bool: ...


class Registry(Protocol):
    def request(
        self, method: str, path_and_query: str, headers: Mapping[str, str]
    ) -> UpstreamResponse: ...


class _Images(Mapping[str, Obj]):
    """Images by digest as one delete sees them: those it read live first, then the
    cache's, then a live read of one the cache lacks (an Image's children never change:
    its manifest is content-addressed, so a cached one answers for them)."""

    def __init__(self, cached: Mapping[str, Obj], writes: Writes) -> None:
        self._cached = cached
        self._writes = writes
        self.live: dict[str, Obj | None] = {}

    def read_live(self, digest: str) -> Obj | None:
        if digest not in self.live:
            self.live[digest] = self._writes.image(digest)
        return self.live[digest]

    def __getitem__(self, digest: str) -> Obj:
        if digest in self.live:
            found = self.live[digest]
        else:
            found = self._cached.get(digest)
            if found is None:
                found = self.read_live(digest)
        if found is None:
            raise KeyError(digest)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter([d for d, image in self.live.items() if image is not None])

    def __len__(self) -> int:
        return sum(1 for image in self.live.values() if image is not None)


class ManifestDeletes:
    def __init__(
        self, records: Records, writes: Writes, registry: Registry, caches: Cached
    ) -> None:
        self._records = records
        self._writes = writes
        self._registry = registry
        self._caches = caches

    def delete_manifest(self, namespace: str, name: str, reference: str) -> None:
        """Steps 1 to 5 for a tag or a digest. Raises ``oci.RegistryError`` (404, DENIED),
        ``RecordFailed`` (the API server could not be asked: nothing was changed yet)."""
        repository = f"{namespace}/{name}"
        if ":" in reference:  # a digest: tags hold no ':'
            self._delete_digest(namespace, name, reference)
            return
        change, written = self._change(
            namespace, name, lambda s: _tag_change(s, repository, reference)
        )
        self._registry_delete(repository, reference)
        self._collect(namespace, name, change.removed, None, written)

    def _delete_digest(self, namespace: str, name: str, digest: str) -> None:
        repository = f"{namespace}/{name}"
        images = self._images()
        own = images.read_live(digest)
        marked = set(self._caches.marked(repository)) - {digest}
        if pushed_by_digest_to(own) == repository:
            marked.add(digest)
        stream = self._records.stream(namespace, name)
        if digest not in repository_images(stream, images, marked):
            raise _unknown(repository, digest)
        index = holding_index(digest, stream, images, marked)
        if index is not None:
            raise oci.denied(
                f"manifest {digest} is part of image index {index} in {repository}: delete"
                " the index, which takes its children with it"
            )
        written = ""
        removed = frozenset({digest})
        if stream is not None:
            change, written = self._change(
                namespace, name, lambda s: without_digest(s or {}, digest)
            )
            # A tag whose current image this was goes whole, its older images with it.
            removed |= change.removed
        unmark = digest if digest in marked else None
        self._collect(namespace, name, removed, unmark, written)

    def _images(self) -> _Images:
        return _Images(self._caches.images_by_digest(), self._writes)

    def _change(self, namespace: str, name: str, decide: _Decide) -> tuple[StreamChange, str]:
        """Step 2: read the stream, decide, write; again on a conflict. The change, and the
        resourceVersion its write was answered with ("" when nothing was written)."""
        for _ in range(CONFLICT_RETRIES):
            stream = self._records.stream(namespace, name)
            change = decide(stream)
            if not change.changed or stream is None:
                return change, ""
            try:
                return change, self._writes.write(stream, change)
            except Denied as err:
                raise oci.denied(err.decision.message) from None
            except Conflict:
                continue
        raise RecordFailed(f"deleting: {CONFLICT_RETRIES} conflicting writes in a row")

    def _collect(
        self,
        namespace: str,
        name: str,
        removed: frozenset[str],
        unmark: str | None,
        written: str,
    ) -> None:
        """Steps 4 and 5; failures are logged (the delete has happened for readers)."""
        if not removed:
            return
        repository = f"{namespace}/{name}"
        try:
            images = self._images()
            candidates = with_children(removed, images)
            for digest in sorted(candidates):
                images.read_live(digest)
            marked_image = images.live.get(unmark) if unmark is not None else None
            if unmark is not None and marked_image is not None:
                images.live[unmark] = without_mark(marked_image)
            marked = {
                d for d, image in images.live.items() if pushed_by_digest_to(image) == repository
            }
            marked |= set(self._caches.marked(repository)) - candidates
            own = self._records.stream(namespace, name)
            still_here = repository_images(own, images, marked)
            unlink = sorted(candidates - still_here)
            deleted = set()
            for digest in self._unreferenced(namespace, name, unlink, images, written):
                image = images.live.get(digest)
                if image is not None and self._writes.delete_image(image):
                    deleted.add(digest)
                    log.info(
                        "deleted an Image no repository references",
                        extra=fields(repository=repository, digest=digest),
                    )
            if marked_image is not None and unmark not in deleted:
                self._writes.drop_mark(marked_image)
        except RecordFailed as err:
            log.warning("a delete left Images for the pruner: %s", err)
            return
        for digest in unlink:
            self._registry_delete(repository, digest)

    def _unreferenced(
        self, namespace: str, name: str, unlink: list[str], images: _Images, written: str
    ) -> tuple[str, ...]:
        """Of ``unlink``, the digests with an Image no repository references: each
        candidate and the indexes above it (the cache's), checked for a mark (live) and for
        a stream naming it (proposed by the cache once it holds this delete's own write,
        each proposal read live; listed live when there is no write to wait for)."""
        held = [d for d in unlink if images.live.get(d) is not None]
        if not held:
            return ()
        parents = parents_above(held, self._caches.parents)
        closure = frozenset(parents)
        if written:
            if not self._caches.wait_for_stream(namespace, name, written, CACHE_WAIT_SECONDS):
                log.warning(
                    "the stream cache is behind: a delete kept its Images for the pruner",
                    extra=fields(repository=f"{namespace}/{name}"),
                )
                return ()
            named = self._named_live(closure)
        else:
            named = _named_in(closure, self._writes.streams())
        roots = named | {d for d in closure if pushed_by_digest_to(images.read_live(d))}
        return unreferenced(held, parents, roots)

    def _named_live(self, digests: frozenset[str]) -> set[str]:
        """The ``digests`` some stream names now: the cache proposes the streams, each read
        live (once per delete) until one confirms; a proposal the stream no longer holds
        is dropped, and the cache proposes every stream written before the delete's own."""
        read: dict[tuple[str, str], frozenset[str]] = {}
        named: set[str] = set()
        for digest, streams in self._caches.streams_naming(digests).items():
            for key in streams:
                if key not in read:
                    read[key] = frozenset(stream_image_digests(self._records.stream(*key)))
                if digest in read[key]:
                    named.add(digest)
                    break
        return named

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
        holders = blob_holders(digest, stream, self._images(), self._caches.marked(repository))
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


def parents_above(digests: Iterable[str], parents: _Parents) -> dict[str, list[str]]:
    """Each of ``digests`` and of the indexes above them, at any depth, with the indexes
    listing it (``parents``, asked once per digest; a cycle ends where it repeats)."""
    found: dict[str, list[str]] = {}
    pending = list(digests)
    while pending:
        digest = pending.pop()
        if digest not in found:
            found[digest] = parents(digest)
            pending.extend(found[digest])
    return found


class _Parents(Protocol):
    def __call__(self, digest: str, /) -> list[str]: ...


def _named_in(digests: frozenset[str], streams: Iterable[Obj]) -> set[str]:
    """The ``digests`` the history of one of ``streams`` names."""
    named: set[str] = set()
    for stream in streams:
        named |= digests & stream_image_digests(stream)
    return named


def _tag_change(stream: Obj | None, repository: str, tag: str) -> StreamChange:
    if stream is None or not holds_tag(stream, tag):
        raise _unknown(repository, tag)
    return without_tag(stream, tag)
