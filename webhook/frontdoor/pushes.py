"""A manifest PUT: judged by the PushReview rules in-process, then written in the order
that keeps the registry and the Image API consistent.

1. Judge (limits, and quota room for a new repository) from the caches: a denial ends the
   push before anything is written, with the contract's message.
2. New repository (no ImageStream, read live): create its ImageStream through the API
   server. Our admission webhook charges the quota there, atomically; when a racing push
   took the last room, that refusal is the push's denial (unless the racer created this
   very stream). No push reaches the registry uncharged.
3. Create the Image (idempotent: content-addressed).
4. PUT the manifest to the registry. If it refuses (a blob it lacks, say), its error goes
   to the client and a stream created in step 2 is deleted again (uid precondition), so a
   failed first push holds no quota.
5. Tag: append the tag event to the stream's status history, judged again by the webhook
   (the authoritative check when two pushes race for the last tag). Only now is the tag
   visible in the ImageStream, and only for a manifest the registry holds.

A failure of step 5 after step 4 leaves the manifest in the registry, tagged there but not
in the stream: the client gets the error (503 to retry, or the denial) and its retry
records the tag (steps 2-5 are idempotent). A push by digest records the Image only: no
tag moves, and the images limit judged it as one more image all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from quota.decision import Decision
from quota.measure import Manifest
from quota.objects import Obj
from quota.pushrecords import (
    PlatformImage,
    image_object,
    image_reference,
    index_image_object,
)
from webhook.frontdoor import distribution as oci
from webhook.frontdoor.manifests import (
    MAX_MANIFEST_BYTES,
    ImageIndex,
    ImageManifest,
    check_reference,
    digest_of,
    parse_manifest,
)
from webhook.frontdoor.records import Denied, RecordFailed
from webhook.frontdoor.upstream import UpstreamResponse
from webhook.pushreview.review import PushRequest

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS: Final = 1


class Judge(Protocol):
    def judge(self, push: PushRequest) -> Decision: ...


class StreamCache(Protocol):
    def imagestream(self, namespace: str, name: str) -> Obj | None: ...


class Records(Protocol):
    def create_stream(self, namespace: str, name: str) -> tuple[Obj, bool]: ...
    def stream(self, namespace: str, name: str) -> Obj | None: ...
    def delete_stream(self, stream: Obj) -> None: ...
    def save_image(self, image: Obj) -> None: ...
    def tag(self, stream: Obj, tag: str, digest: str, reference: str) -> None: ...


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
    """The push breaks a limit or the quota; ``reason`` labels the metric."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.reason = denial_reason(message)


def denial_reason(message: str) -> str:
    """Which rule a denial message reports, for the denials metric."""
    if "exceeded quota:" in message:
        return "quota"
    if "alauda.io/image-tags" in message:
        return "tags"
    if "alauda.io/images" in message:
        return "images"
    if "storage" in message:
        return "size"
    return "other"


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
    def __init__(self, judge: Judge, records: Records, registry: Registry, host: str) -> None:
        """``host``: the registry hostname clients pull from, recorded in references."""
        self._judge = judge
        self._records = records
        self._registry = registry
        self._host = host

    def put(self, put: ManifestPut) -> UpstreamResponse:
        """Raises ``oci.RegistryError`` (bad manifest), ``PushDenied`` or ``RecordFailed``."""
        parsed = parse_manifest(put.body, put.content_type)
        tag = check_reference(put.reference, put.body)
        digest = digest_of(put.body)
        reference = image_reference(self._host, put.repository, digest)
        if isinstance(parsed, ImageIndex):
            children = self._children(put, parsed)
            measured = max(children, key=lambda child: child[0].image_size)[1] if children else None
            image = index_image_object(
                digest, reference, parsed.media_type, [child for child, _ in children]
            )
        else:
            measured = parsed.manifest
            image = image_object(
                digest,
                reference,
                parsed.media_type,
                parsed.manifest,
                [layer.media_type for layer in parsed.layers],
            )
        self._judge_push(put, tag, digest, parsed.media_type, measured or Manifest(None))
        stream, created = self._stream(put)
        self._save(put, image)
        response = self._registry.request(
            "PUT",
            f"/v2/{put.repository}/manifests/{put.reference}",
            {"Content-Type": put.content_type or parsed.media_type},
            put.body,
        )
        if response.status >= 300:
            if created:
                self._records.delete_stream(stream)
            return response
        if tag is not None:
            try:
                self._records.tag(stream, tag, digest, reference)
            except Denied as err:
                response.close()
                raise PushDenied(str(err)) from None
            except RecordFailed:
                response.close()
                raise
        return response

    def _judge_push(
        self, put: ManifestPut, tag: str | None, digest: str, media_type: str, manifest: Manifest
    ) -> None:
        request = PushRequest(put.namespace, put.name, tag, digest, media_type, manifest, {})
        decision = self._judge.judge(request)
        if not decision.allowed:
            raise PushDenied(decision.message, retryable=decision.code == 503)

    def _stream(self, put: ManifestPut) -> tuple[Obj, bool]:
        """The repository's ImageStream, created (and charged) only when there is none.

        Read first: admission runs before the API server's own existence check, so
        creating a stream that exists is judged as a new one, and a full quota would deny
        a push to a repository it already counts. When the create is denied, a racing
        first push may have created the stream meanwhile: that one is used."""
        existing = self._records.stream(put.namespace, put.name)
        if existing is not None:
            return existing, False
        try:
            return self._records.create_stream(put.namespace, put.name)
        except Denied as err:
            raced = self._records.stream(put.namespace, put.name)
            if raced is not None:
                return raced, False
            raise PushDenied(str(err)) from None

    def _save(self, put: ManifestPut, image: Obj) -> None:
        try:
            self._records.save_image(image)
        except Denied as err:
            raise PushDenied(str(err)) from None

    def _children(
        self, put: ManifestPut, index: ImageIndex
    ) -> list[tuple[PlatformImage, Manifest]]:
        """Each child manifest, read from the registry (clients push them first, by
        digest) and measured: every one must fit the ``alauda.io/Image`` limit."""
        children = []
        for position, child in enumerate(index.manifests):
            status, body = self._registry.read(
                f"/v2/{put.repository}/manifests/{child.digest}",
                {"Accept": child.media_type},
                MAX_MANIFEST_BYTES,
            )
            if status == 404:
                raise oci.manifest_blob_unknown(child.digest)
            if status != 200:
                raise RecordFailed(f"reading manifests[{position}]: HTTP {status}")
            parsed = parse_manifest(body, child.media_type)
            if not isinstance(parsed, ImageManifest):
                raise oci.manifest_invalid(
                    f"manifests[{position}] is an image index: nested indexes are not accepted"
                )
            children.append(
                (
                    PlatformImage(
                        child.digest,
                        child.media_type,
                        child.size,
                        parsed.manifest.size,
                        child.platform,
                    ),
                    parsed.manifest,
                )
            )
        return children
