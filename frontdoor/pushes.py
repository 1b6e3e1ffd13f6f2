"""A manifest PUT: judged by the PushReview rules in-process, then written in the order
that keeps the registry and the Image API consistent.

0. Gather: parse the manifest once into ``quota.push.Push`` (an index with each child
   read back from the registry, a child that is an index with its own, to
   ``MAX_INDEX_DEPTH`` levels and ``MAX_PUSH_MANIFESTS`` manifests), and check what it
   declares against what the registry holds: each blob it names (config and layers, of
   every image at any depth) must be there at its declared size, and each child of an
   index must be as long as declared (``blobsizes``), so that no rule judges a size the
   registry does not hold.
1. Decide: judge that Push (limits, quota room for a new repository, and
   ``alauda.io/image-storage`` room for its new bytes) from the caches: a denial ends the
   push before anything is written, with the contract's message and its cause. Steps 2
   to 6 act, and write the Image from the same Push.
2. New repository (no ImageStream, read live unless this worker's last tag write to it
   returned it and the watch cache has nothing newer): create its ImageStream through
   the API server. Our admission webhook charges the quota there, atomically; when a racing push
   took the last room, that refusal is the push's denial (unless the racer created this
   very stream). Then charge the push's new bytes (blobs the namespace's Images do not
   hold yet) to ``alauda.io/image-storage``, atomically on the quota's status; a refusal
   there (a racing push took the room) is the push's denial, and a stream this push
   created is deleted again. No manifest reaches the registry uncharged. A charge whose
   push then fails is released by the usage reconciler (after its grace: no delete
   explains it).
3. PUT the manifest to the registry by digest: no tag moves yet. The read-only switch is
   asked again first (not only when the request began): while it is set, the push gets
   the read-only refusal. If that or the registry refuses it (a blob it lacks, say), the
   refusal goes to the client and a stream created in step 2 is deleted again (only if
   no other push has written to it since), so a failed first push holds no quota. So is
   it when any later step up to the tag's record is refused or fails: a refused push
   leaves no stream and no charge behind.
4. Create the Image (content-addressed: one that exists is kept), only for a manifest the
   registry holds; an index's children (at any depth) get theirs first. A tag push whose
   Image the watch cache holds creates it after step 5 instead (below), not twice.
5. Tag: append the tag event to the stream's status history, judged again by our webhook
   (the authoritative check when two pushes race for the last tag: the loser is denied
   here, and its tag never moves in the registry). The write carries the resourceVersion
   of the stream it was computed from, so a stale stream is a 409 and a live re-read; a
   remembered stream that already records the tag is read live before nothing is written.
   A remembered stream deleted since is created here as step 2 creates a new one (its
   ``alauda.io/imagestreams`` charge, or the denial, comes after step 3 then).
6. PUT the manifest to the registry by tag: the registry's tag moves last, after the
   ImageStream records it.

A push by digest marks its Image (``ANNOTATION_PUSHED_BY_DIGEST``, naming the
repository): that mark, not the Image's reference, is what serves an untagged digest, so
the Image a refused tag push saved in step 4 is never served.

A failure after step 3 leaves at most an untagged manifest in the registry; a failure of
step 6 leaves the ImageStream naming a manifest the registry holds (by digest) while its
tag there has not moved yet. The client gets the error (503 to retry, or the denial), and
its retry completes the rest: every step is idempotent. A push by digest stops after step
4: no tag moves, and the images limit judged it as one more image all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any, Final, Protocol

from kubernetes.client.exceptions import ApiException

from frontdoor import distribution as oci
from frontdoor.blobsizes import BlobSizes
from frontdoor.manifests import (
    MAX_MANIFEST_BYTES,
    ImageIndex,
    IndexEntry,
    check_reference,
    digest_of,
    parse_manifest,
)
from frontdoor.readonly import read_only_refusal
from frontdoor.records import Denied, RecordFailed, StreamGone
from frontdoor.streammemory import StreamMemory
from frontdoor.upstream import UpstreamResponse
from quota.decision import Decision
from quota.measure import Manifest
from quota.objects import Obj
from quota.push import IndexChild, Push
from quota.pushrecords import image_object, image_reference

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS: Final = 1
MAX_INDEX_CHILDREN: Final = 256
"""Manifests one image index may name. Multi-platform images name a handful (with their
attestations, a few dozen); each child is read back and parsed, so without a bound one
4 MiB index naming 25,000 entries would make a single push read and parse that many."""
MAX_INDEX_DEPTH: Final = 4
"""Levels of image indexes one push may stack, the pushed index being the first. Nested
indexes in use have two (an index of per-platform or per-variant indexes, as OCI layouts
and ``crane index append`` build them); four leaves room for one more wrapping each,
and stops a chain of indexes from making one push walk (and record) without end."""
MAX_PUSH_MANIFESTS: Final = MAX_INDEX_CHILDREN
"""Distinct child manifests one push reads back from the registry, at every depth
together: as many as one flat index may name, so nesting costs a push no more reads than
the widest flat index (two levels of 256 would otherwise be 65,536 reads)."""


class Judge(Protocol):
    def judge(self, push: Push) -> Decision: ...
    def charge_storage(self, push: Push) -> Decision:
        """Charge the push's new bytes to ``alauda.io/image-storage`` (the verdict)."""
        ...


class Records(Protocol):
    def create_stream(self, namespace: str, name: str) -> tuple[Obj, bool]: ...
    def stream(self, namespace: str, name: str) -> Obj | None: ...
    def delete_stream(self, stream: Obj) -> None: ...
    def save_image(self, image: Obj) -> bool:
        """True when created; False when the Image existed already."""
        ...

    def tag(
        self, stream: Obj, tag: str, digest: str, reference: str, *, remembered: bool = False
    ) -> Obj:
        """Record the tag (its write carries ``stream``'s resourceVersion); the stream
        as written. ``remembered``: ``stream`` came from ``StreamMemory``, not a live
        read, so a tag it already records is confirmed live before nothing is written."""
        ...


class Registry(Protocol):
    def request(
        self,
        method: str,
        path_and_query: str,
        headers: Mapping[str, str],
        body: Any = None,
        length: int | None = None,
    ) -> UpstreamResponse: ...

    def read(self, path: str, headers: Mapping[str, str], limit: int) -> tuple[int, bytes]: ...


class PushDenied(Exception):
    """The push breaks a limit or the quota, or cannot be judged now: ``decision`` names
    the rule (its ``cause``, which labels the metric) and whether a retry may pass."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message)
        self.decision = decision


@dataclass(frozen=True)
class ManifestPut:
    namespace: str
    name: str
    reference: str
    body: bytes
    content_type: str | None

    @property
    def repository(self) -> str:
        return f"{self.namespace}/{self.name}"


class ManifestPuts:
    def __init__(
        self,
        judge: Judge,
        records: Records,
        registry: Registry,
        host: str,
        blobs: BlobSizes | None = None,
        image_saved: Callable[[str], None] = lambda digest: None,
        read_only: Callable[[], bool] = lambda: False,
        streams: StreamMemory | None = None,
        image_cached: Callable[[str], bool] = lambda digest: False,
    ) -> None:
        """``host``: the registry hostname clients pull from, recorded in references;
        ``blobs``: the registry's blob sizes (by default asked of ``registry``);
        ``image_saved``: told each digest whose Image is recorded (the reads' miss cache);
        ``read_only``: the registry's read-only switch (``frontdoor.readonly``), asked
        again right before the manifest reaches the registry; ``streams``: the streams
        this worker's tag writes returned (by default none: each push reads its stream
        live); ``image_cached``: whether the watch cache holds the Image of a digest."""
        self._judge = judge
        self._records = records
        self._registry = registry
        self._host = host
        self._blobs = blobs or BlobSizes(registry)
        self._image_saved = image_saved
        self._read_only = read_only
        self._streams = streams if streams is not None else StreamMemory(lambda ns, name: None)
        self._image_cached = image_cached

    def put(self, put: ManifestPut) -> UpstreamResponse:
        """Raises ``oci.RegistryError`` (bad manifest), ``PushDenied`` or ``RecordFailed``."""
        push = self._push(put)  # gather: step 0
        decision = self._judge.judge(push)  # decide: step 1
        if not decision.allowed:
            raise PushDenied(decision)
        return self._record(put, push)  # act: steps 2 to 6

    def _push(self, put: ManifestPut) -> Push:
        """The manifest PUT, parsed once into the value the rules judge and the Image is
        written from, with each blob (and child) it names checked against the registry."""
        parsed = parse_manifest(put.body, put.content_type)
        tag = check_reference(put.reference, put.body)
        digest = digest_of(put.body)
        if isinstance(parsed, ImageIndex):
            children = self._children(put, parsed)
            return Push(
                put.namespace, put.name, tag, digest, parsed.media_type, Manifest(None), children
            )
        self._check_blobs(put, parsed.manifest, "")
        return Push(put.namespace, put.name, tag, digest, parsed.media_type, parsed.manifest)

    def _record(self, put: ManifestPut, push: Push) -> UpstreamResponse:
        """Steps 2 to 6 for a push the rules allowed."""
        reference = image_reference(self._host, put.repository, push.digest)
        # Only a push by digest marks its Image as served by digest here: a tag push's
        # Image is served once its tag is recorded (step 5), so a tag refused there
        # leaves an Image that serves nothing.
        by_digest_to = put.repository if push.tag is None else None
        image = image_object(push, reference, by_digest_to)
        remembered = self._streams.recall(put.namespace, put.name)
        stream, created = (remembered, False) if remembered is not None else self._stream(put)
        # The body's own media type: a client's generic Content-Type (application/json,
        # none) is one the registry may not map to a manifest type.
        headers = {"Content-Type": push.media_type}
        try:
            charged = self._charge_storage(push)
            if not charged.allowed:
                raise PushDenied(charged)
            if self._read_only():
                # Set since the request began (judging an index reads its children back,
                # a stream create waits on admission): a manifest landing now could be
                # swept with its blobs by the collection the switch is for.
                raise read_only_refusal()
            by_digest = self._registry.request(
                "PUT", f"/v2/{put.repository}/manifests/{push.digest}", headers, put.body
            )
            if by_digest.status >= 300:
                self._undo(stream, created)
                return by_digest
            self._save_children(put, push)
            if push.tag is None:
                self._save(image, push.digest)
                return by_digest
            by_digest.close()
            # An Image the cache holds exists, or was deleted since: either way it is
            # saved once its tag is recorded, below, so it is not created first as well.
            existed = self._image_cached(push.digest) or not self._save(image, push.digest)
            try:
                written = self._tag(
                    put, stream, remembered is not None, push.tag, push.digest, reference
                )
            except Denied as err:
                raise PushDenied(err.decision) from None
        except Exception:
            # Refused or failed before the tag was recorded: a stream this push created
            # is empty, and would hold quota for nothing (the client's retry makes it again).
            self._undo(stream, created)
            # A failed write may mean a stream that changed or went: the next push reads
            # it live.
            self._streams.forget(put.namespace, put.name)
            raise
        self._streams.remember(written)
        if existed:
            # An Image that existed was judged by a delete or a prune that may have found
            # it unreferenced before this tag was recorded, and deleted it since: the tag
            # references it now, so it is saved again (a no-op when it is still there).
            self._save_children(put, push)
            self._save(image, push.digest)
        return self._registry.request(
            "PUT", f"/v2/{put.repository}/manifests/{push.tag}", headers, put.body
        )

    def _charge_storage(self, push: Push) -> Decision:
        """The storage charge; an API error (throttled, unavailable) is a failed record
        the client retries, never a 500."""
        try:
            return self._judge.charge_storage(push)
        except ApiException as err:
            raise RecordFailed(
                f"charging alauda.io/image-storage: HTTP {err.status} {err.reason}"
            ) from None

    def _stream(self, put: ManifestPut) -> tuple[Obj, bool]:
        """The repository's ImageStream, created (and charged) only when there is none.

        Read first: admission runs before the API server's own existence check, so
        creating a stream that exists is judged as a new one, and a full quota would deny
        a push to a repository it already counts. Read live (``_record`` uses the stream
        our last tag write returned instead while the watch cache has nothing newer:
        ``StreamMemory``), as a cache that lags could miss a stream just created. When the
        create is denied, a racing first push may have created the stream meanwhile:
        that one is used."""
        existing = self._records.stream(put.namespace, put.name)
        if existing is not None:
            return existing, False
        try:
            return self._records.create_stream(put.namespace, put.name)
        except Denied as err:
            raced = self._records.stream(put.namespace, put.name)
            if raced is not None:
                return raced, False
            raise PushDenied(err.decision) from None

    def _tag(
        self,
        put: ManifestPut,
        stream: Obj,
        remembered: bool,
        tag: str,
        digest: str,
        reference: str,
    ) -> Obj:
        """Step 5, on the stream step 2 found. A remembered stream deleted since (the
        watch cache has not seen it go) is found again as a fresh push finds it: read
        live, and created (charged by our webhook, whose refusal is the push's denial)
        when still gone; one created here is deleted again when its tag is refused. A
        stream read live and gone by now is the client's to retry, as it always was."""
        try:
            return self._records.tag(stream, tag, digest, reference, remembered=remembered)
        except StreamGone:
            if not remembered:
                raise
        again, created = self._stream(put)
        try:
            return self._records.tag(again, tag, digest, reference)
        except Exception:
            self._undo(again, created)
            raise

    def _undo(self, stream: Obj, created: bool) -> None:
        """Delete the stream this push created (``delete_stream`` keeps one another push
        has written to since)."""
        if created:
            self._records.delete_stream(stream)

    def _check_blobs(self, put: ManifestPut, image: Manifest, at: str) -> None:
        """Each blob ``image`` names is in the registry at its declared size; ``at`` is
        where the image sits in the pushed manifest (``manifests[i].`` for a child)."""
        blobs = [] if image.config is None else [(f"{at}config", image.config)]
        blobs += [(f"{at}layers[{i}]", layer) for i, layer in enumerate(image.layers)]
        for field, blob in blobs:
            self._blobs.check(put.repository, field, blob.digest, blob.size)

    def _save_children(self, put: ManifestPut, push: Push) -> None:
        """An index's children's Images, before the index's own (step 4)."""
        for child in child_pushes(push):
            reference = image_reference(self._host, put.repository, child.digest)
            self._save(image_object(child, reference), child.digest)

    def _save(self, image: Obj, digest: str) -> bool:
        """Save one Image (step 4); True when it was created, False when it existed."""
        try:
            created = self._records.save_image(image)
        except Denied as err:
            raise PushDenied(err.decision) from None
        self._image_saved(digest)
        return created

    def _children(
        self, put: ManifestPut, index: ImageIndex, at: str = "", walk: _Walk | None = None
    ) -> tuple[IndexChild, ...]:
        """Each child manifest, read from the registry (clients push them first, by
        digest) and measured: every image at any depth must fit the ``alauda.io/Image``
        limit. A child that is an index is read the same way, down to ``MAX_INDEX_DEPTH``
        levels and ``MAX_PUSH_MANIFESTS`` manifests in all. ``at``: where ``index`` sits
        in the pushed manifest (``manifests[i].`` for a nested one)."""
        walk = walk or _Walk()
        if len(index.manifests) > MAX_INDEX_CHILDREN:
            raise oci.manifest_invalid(
                f"an image index may name at most {MAX_INDEX_CHILDREN} manifests here; "
                f"{'this one' if not at else at.rstrip('.')} names {len(index.manifests)}"
            )
        for position, child in enumerate(index.manifests):
            if child.digest not in walk.measured:
                walk.measured[child.digest] = self._child(
                    put, f"{at}manifests[{position}]", child, walk
                )
        return tuple(
            IndexChild(child.digest, child.media_type, child.size, child.platform, *measured)
            for child in index.manifests
            for measured in (walk.measured[child.digest],)
        )

    def _child(self, put: ManifestPut, path: str, child: IndexEntry, walk: _Walk) -> _Measured:
        """One child manifest, read back from the registry and measured: an image's
        manifest, or a nested index's children."""
        if len(walk.measured) >= MAX_PUSH_MANIFESTS:
            raise oci.manifest_invalid(
                f"an image index and the indexes it names may name at most"
                f" {MAX_PUSH_MANIFESTS} distinct manifests here; {path} is one more"
            )
        status, body = self._registry.read(
            f"/v2/{put.repository}/manifests/{child.digest}",
            {"Accept": child.media_type},
            MAX_MANIFEST_BYTES,
        )
        if status == 404:
            raise oci.manifest_blob_unknown(child.digest)
        if status != 200:
            raise RecordFailed(f"reading {path}: HTTP {status}")
        if len(body) != child.size:
            raise oci.manifest_invalid(
                f"{path}.size is {child.size}, but the registry holds"
                f" {len(body)} bytes for {child.digest}"
            )
        parsed = parse_manifest(body, child.media_type)
        if isinstance(parsed, ImageIndex):
            depth = path.count("manifests[") + 1
            if depth > MAX_INDEX_DEPTH:
                raise oci.manifest_invalid(
                    f"{path} is an image index at level {depth}: indexes may nest at most"
                    f" {MAX_INDEX_DEPTH} levels deep here"
                )
            return Manifest(None), self._children(put, parsed, f"{path}.", walk)
        self._check_blobs(put, parsed.manifest, f"{path}.")
        return parsed.manifest, None


_Measured = tuple[Manifest, tuple[IndexChild, ...] | None]
"""A child as read: its image (``Manifest(None)`` for an index) and an index's children."""


@dataclass
class _Walk:
    """One push's reads of child manifests, at every depth: each digest read once."""

    measured: dict[str, _Measured] = default(default_factory=dict)


def child_pushes(push: Push) -> Iterator[Push]:
    """A push of each distinct manifest an index names, at any depth, children before the
    index naming them: each is recorded as an Image of its own (content-addressed, as
    OpenShift records a manifest list's sub-manifests), so that what counts an index's
    blobs finds them through its children's Images, and no Image names a child with none."""
    seen: set[str] = set()

    def walk(children: tuple[IndexChild, ...] | None) -> Iterator[Push]:
        for child in children or ():
            if child.digest in seen:
                continue
            seen.add(child.digest)
            yield from walk(child.children)
            yield Push(
                push.namespace,
                push.repository,
                None,
                child.digest,
                child.media_type,
                child.manifest,
                child.children,
            )

    return walk(push.children)
