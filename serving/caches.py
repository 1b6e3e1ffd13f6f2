"""Watch-backed caches the webhook server reads on its hot path (no list calls there)."""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import apierrors
from kube.informer import Informer
from kube.metadata import metadata_list_func
from kube.transforms import Keep, identity, projection, strip_managed_fields
from quota.measure import StreamUsage, recorded_image_size, stream_usage
from quota.names import IMAGE_GROUP, IMAGE_VERSION, IMAGES, IMAGESTREAMS
from quota.objects import Obj, object_name
from quota.pullsecrets.names import (
    ANNOTATION_SERVICE_ACCOUNT_NAME,
    LABEL_MANAGED_BY,
    SECRET_TYPE_DOCKERCONFIGJSON,
)
from quota.served import RecordedRepository, current_images

log = logging.getLogger(__name__)

PULL_SECRET_TYPES = (SECRET_TYPE_DOCKERCONFIGJSON, "kubernetes.io/dockercfg")
"""The two Secret types the kubelet takes image pull credentials from."""


NAMESPACE_KEEP: Final[Mapping[str, Keep]] = {"metadata": {"labels": True}}
"""The mutating webhook reads a namespace's labels (the opt-out)."""
LIMIT_RANGE_KEEP: Final[Mapping[str, Keep]] = {"spec": {"limits": True}}
"""``quota.limits.effective_limits`` reads the items and names the LimitRange."""
PULL_SECRET_KEEP: Final[Mapping[str, Keep]] = {
    "metadata": {
        "labels": {LABEL_MANAGED_BY: True},
        "annotations": {ANNOTATION_SERVICE_ACCOUNT_NAME: True},
        "ownerReferences": [{"apiVersion": True, "kind": True, "name": True, "uid": True}],
    }
}
"""``quota.pullsecrets.desired_secret.may_reference``: the managed markers and the owner."""


def cached_image(image: Obj) -> Obj:
    """An Image as the webhook keeps it: what finds it (name, ``dockerImageReference``) and
    its size as ``quota.measure.recorded_image_size`` reads it, worked out once here.

    A registry's Image carries its config, history and layer list (kilobytes each, 20,000
    of them in a large cluster); the rules need one number. Without a usable size the
    cached Image records none, as the original then gives none."""
    cached = identity(image)
    if "dockerImageReference" in image:
        cached["dockerImageReference"] = image["dockerImageReference"]
    size = recorded_image_size(image)
    if size is not None:
        cached["dockerImageMetadata"] = {"size": size}
    return cached


STREAM_TAGS: Final = "tags"
STREAM_IMAGES: Final = "images"
STREAM_SHA256: Final = "sha256"
STREAM_CURRENT: Final = "current"
"""Keys of a cached stream: its distinct tag names and other image digests, as tuples, its
``sha256:`` digests packed into one bytes object, 32 bytes each, and each status tag's
current image as ``(tag, digest)`` pairs (what the front door serves a read by tag by)."""
SHA256_PREFIX: Final = "sha256:"
SHA256_BYTES: Final = 32
"""The OCI image-spec's sha256 digest: 64 lowercase hex characters after the prefix."""


def _sha256_bytes(digest: str) -> bytes | None:
    """The 32 bytes of a canonical ``sha256:<64 lowercase hex>`` digest, else None."""
    hex_part = digest.removeprefix(SHA256_PREFIX)
    if len(hex_part) != 2 * SHA256_BYTES or hex_part == digest:
        return None
    try:
        raw = bytes.fromhex(hex_part)
    except ValueError:
        return None
    return raw if raw.hex() == hex_part else None


def cached_stream(stream: Obj) -> Obj:
    """An ImageStream as the webhook keeps it: its identity and ``stream_usage``, the
    distinct tag names and image digests. On 20,000 streams of 15 history items each,
    the items as dicts took 166 MiB, as tuples of strings 56 MiB, with the sha256 digests
    packed 29 MiB (tracemalloc)."""
    usage = stream_usage(stream)
    packed, others = bytearray(), []
    for digest in usage.images:
        raw = _sha256_bytes(digest)
        if raw is None:
            others.append(digest)
        else:
            packed += raw
    return {
        **identity(stream),
        STREAM_TAGS: tuple(usage.tags),
        STREAM_IMAGES: tuple(others),
        STREAM_SHA256: bytes(packed),
    }


def cached_stream_for_reads(stream: Obj) -> Obj:
    """``cached_stream`` plus each status tag's current image, which the front door
    forwards a read by tag by; only its caches keep it (a few hundred bytes per tag, which
    the webhook server, judging usage alone, need not hold)."""
    return {**cached_stream(stream), STREAM_CURRENT: tuple(current_images(stream).items())}


def stream_digests(cached: Obj) -> list[str]:
    """Every image digest of a cached stream, as the stream spelled them."""
    packed: bytes = cached.get(STREAM_SHA256, b"")
    return [
        SHA256_PREFIX + packed[i : i + SHA256_BYTES].hex()
        for i in range(0, len(packed), SHA256_BYTES)
    ] + list(cached.get(STREAM_IMAGES, ()))


def cached_usage(cached: Obj) -> StreamUsage:
    """The tag names and image digests of a cached stream, as the rules take them: measured
    once, when the cache stored the stream (``cached_stream``)."""
    return StreamUsage(frozenset(cached.get(STREAM_TAGS, ())), frozenset(stream_digests(cached)))


def image_digests(image: dict[str, Any]) -> list[str]:
    """Digests an Image object describes: its name, and the digest of its reference."""
    digests = []
    name = object_name(image)
    if ":" in name:
        digests.append(name)
    reference = image.get("dockerImageReference")
    if isinstance(reference, str) and "@" in reference:
        digests.append(reference.rsplit("@", 1)[1])
    return digests


class NotSynced(Exception):
    """A cache asked before its first list: absence there means nothing yet."""


class PushCaches:
    """What the push rules read (LimitRanges, ResourceQuotas, ImageStreams): the whole of
    the front door's caches, and the base of the webhook server's. Informers start in
    each gunicorn worker (after the fork) and stop with it."""

    def __init__(self, api: client.ApiClient, *, reads: bool = False) -> None:
        """``reads``: the streams also keep each tag's current image (``recorded``)."""
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        # Read-only caches keep what their rules read; the quotas, written back by the
        # charge, lose only their managedFields.
        self.limit_ranges = Informer(
            "limitranges",
            self._core.list_limit_range_for_all_namespaces,
            transform=projection(LIMIT_RANGE_KEEP),
        )
        self.resource_quotas = Informer(
            "resourcequotas",
            self._core.list_resource_quota_for_all_namespaces,
            transform=strip_managed_fields,
        )
        self.imagestreams = Informer(
            "imagestreams",
            functools.partial(
                self._custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGESTREAMS
            ),
            missing_ok=True,
            transform=cached_stream_for_reads if reads else cached_stream,
        )
        self._stop = threading.Event()

    @property
    def informers(self) -> list[Informer]:
        return [self.limit_ranges, self.resource_quotas, self.imagestreams]

    def start(self) -> None:
        for informer in self.informers:
            informer.start(self._stop)

    def stop(self) -> None:
        self._stop.set()

    def not_ready(self) -> str | None:
        """A readiness check: None once every cache has synced."""
        pending = [i.name for i in self.informers if not i.has_synced()]
        return f"caches not synced: {', '.join(pending)}" if pending else None

    def limit_ranges_in(self, namespace: str) -> list[dict[str, Any]]:
        return self.limit_ranges.list(namespace)

    def quotas_in(self, namespace: str) -> list[dict[str, Any]]:
        return self.resource_quotas.list(namespace)

    def imagestream_usage(self, namespace: str, name: str) -> StreamUsage | None:
        """What the cached ImageStream ``namespace/name`` counts, None when the cache has
        no such stream."""
        cached = self.imagestreams.get(f"{namespace}/{name}")
        return None if cached is None else cached_usage(cached)

    def recorded(self, namespace: str, name: str) -> RecordedRepository | None:
        """What the cached ImageStream ``namespace/name`` records for reads, or None when
        the cache has no such stream (not synced, not seen yet, or none). Its tags are
        known only to caches built with ``reads``."""
        cached = self.imagestreams.get(f"{namespace}/{name}")
        if cached is None:
            return None
        return RecordedRepository(
            dict(cached.get(STREAM_CURRENT, ())), frozenset(stream_digests(cached))
        )


class WebhookCaches(PushCaches):
    """The push rules' caches, plus what admission reads: namespaces (the opt-out label),
    Images (sizes) and the metadata of pull Secrets."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.namespaces = Informer(
            "namespaces", self._core.list_namespace, transform=projection(NAMESPACE_KEEP)
        )
        self.images = Informer(
            "images",
            functools.partial(
                self._custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGES
            ),
            missing_ok=True,
            index=image_digests,
            transform=cached_image,
        )
        # Metadata only (never Secret data) of the Secrets the kubelet pulls with: the
        # mutating webhook must know whether the managed name is someone else's.
        self.pull_secrets = [
            Informer(
                f"secrets({secret_type})",
                metadata_list_func(api, "/api/v1/secrets"),
                field_selector=f"type={secret_type}",
                transform=projection(PULL_SECRET_KEEP),
            )
            for secret_type in PULL_SECRET_TYPES
        ]

    @property
    def informers(self) -> list[Informer]:
        return [
            self.namespaces,
            self.limit_ranges,
            self.resource_quotas,
            self.images,
            self.imagestreams,
            *self.pull_secrets,
        ]

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        """From the cache; before it has synced (or for a namespace it has not seen yet),
        one direct read, so a fresh worker never guesses."""
        namespace = self.namespaces.get(name)
        if namespace is None:
            try:
                response = self._core.read_namespace(
                    name, _preload_content=False, _request_timeout=3
                )
                namespace = json.loads(response.data)
            except ApiException as err:
                if apierrors.is_not_found(err):
                    return None
                raise
        metadata = namespace.get("metadata") or {}
        labels: Mapping[str, str] = metadata.get("labels") or {}
        return labels

    def pull_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """Metadata of the pull Secret ``namespace/name`` (either type), None when there is
        none; :class:`NotSynced` until the first lists are in, as "none" would be a guess."""
        for informer in self.pull_secrets:
            if not informer.has_synced():
                raise NotSynced(informer.name)
            found = informer.get(f"{namespace}/{name}")
            if found is not None:
                return found
        return None

    def image(self, digest: str) -> dict[str, Any] | None:
        """The Image describing ``digest``: named after it (the aggregated Image API), or,
        as CRD names cannot hold ':', any Image whose dockerImageReference ends in it."""
        found = self.images.get(digest)
        if found is not None:
            return found
        matches = self.images.by_index(digest)
        return matches[0] if matches else None
