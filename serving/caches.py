"""Watch-backed caches a door reads on its push path (no list calls there): what the push rules
read, which both doors hold; each door adds its own (``webhook.caches``, ``frontdoor.caches``).

Images are kept with their blobs and children only (``quota.storage.IMAGE_BLOB_FIELDS``),
packed (``serving.compactimages``), indexed by the digest they record and by the namespace
a push by digest recorded them for, so the blobs a namespace already holds (which
``alauda.io/image-storage`` does not charge again) are read from its own Images, never by walking
every Image in the cluster."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Final

from kubernetes import client

from kube.informer import Informer
from kube.transforms import Keep, identity, projection, strip_managed_fields
from quota.imagerefs import image_digest, pushed_by_digest_to
from quota.measure import StreamUsage, stream_usage
from quota.names import IMAGE_GROUP, IMAGE_VERSION, IMAGES, IMAGESTREAMS
from quota.objects import Obj
from quota.storage import IMAGE_BLOB_FIELDS, blobs_held
from serving.compactimages import SHA256_BYTES, SHA256_PREFIX, compact_image, sha256_bytes

LIMIT_RANGE_KEEP: Final[Mapping[str, Keep]] = {"spec": {"limits": True}}
"""``quota.limits.effective_limits`` reads the items and names the LimitRange."""
project_image_blobs: Final = projection(IMAGE_BLOB_FIELDS)
"""An Image reduced to what the storage quota reads, as a dict."""
STREAM_TAGS: Final = "tags"
STREAM_IMAGES: Final = "images"
STREAM_SHA256: Final = "sha256"
"""Keys of a cached stream: its distinct tag names and other image digests, as tuples, and
its ``sha256:`` digests packed into one bytes object, 32 bytes each."""


def cached_image_blobs(image: Obj) -> Obj:
    """An Image as the push caches keep it: what the storage quota reads, packed
    (``serving.compactimages``) unless the packed form would not read the same."""
    return compact_image(project_image_blobs(image))


def cached_stream(stream: Obj) -> Obj:
    """An ImageStream as a door keeps it: its identity and ``stream_usage``, the
    distinct tag names and image digests. On 20,000 streams of 15 history items each,
    the items as dicts took 166 MiB, as tuples of strings 56 MiB, with the sha256 digests
    packed 29 MiB (tracemalloc)."""
    usage = stream_usage(stream)
    packed, others = bytearray(), []
    for digest in usage.images:
        raw = sha256_bytes(digest)
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


def stream_digests(cached: Obj) -> list[str]:
    """Every image digest of a cached stream, as the stream spelled them."""
    packed: bytes = cached.get(STREAM_SHA256, b"")
    return [
        SHA256_PREFIX + packed[i : i + SHA256_BYTES].hex()
        for i in range(0, len(packed), SHA256_BYTES)
    ] + list(cached.get(STREAM_IMAGES, ()))


PUSHED_TO_INDEX: Final = "pushed-by-digest-to:"
"""Index key prefix of an Image a push by digest recorded for a repository of the namespace
that follows."""


def image_keys(image: Obj) -> list[str]:
    """How a door finds a cached Image: the digest it records, and the namespace a push by
    digest recorded it for."""
    keys = []
    digest = image_digest(image)
    if digest is not None:
        keys.append(digest)
    pushed = pushed_by_digest_to(image)
    if pushed:
        keys.append(PUSHED_TO_INDEX + pushed.split("/", 1)[0])
    return keys


class CachedImages(Mapping[str, Obj]):
    """The Images informer as ``quota.imagerefs`` reads Images: by the digest they record,
    each looked up in the index (iterating walks every cached Image)."""

    def __init__(self, informer: Informer) -> None:
        self._informer = informer

    def __getitem__(self, digest: str) -> Obj:
        found = [i for i in self._informer.by_index(digest) if image_digest(i) == digest]
        if not found:
            raise KeyError(digest)
        return found[0]

    def __iter__(self) -> Iterator[str]:
        return iter({d for i in self._informer.list() if (d := image_digest(i)) is not None})

    def __len__(self) -> int:
        return len(self._informer.list())


def cached_usage(cached: Obj) -> StreamUsage:
    """The tag names and image digests of a cached stream, as the rules take them: measured
    once, when the cache stored the stream (``cached_stream``)."""
    return StreamUsage(frozenset(cached.get(STREAM_TAGS, ())), frozenset(stream_digests(cached)))


class PushCaches:
    """What the push rules read (LimitRanges, ResourceQuotas, ImageStreams): the whole of
    the base of each door's caches. Informers start in each gunicorn worker (after the
    fork) and stop with it."""

    def __init__(self, api: client.ApiClient) -> None:
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
            transform=self.cache_stream,
        )
        self.images = Informer(
            "images",
            functools.partial(
                self._custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGES
            ),
            missing_ok=True,
            index=self.image_keys,
            transform=self.cache_image,
        )
        self._stop = threading.Event()

    def cache_stream(self, stream: Obj) -> Obj:
        """An ImageStream as these caches keep it; a door that reads more keeps more."""
        return cached_stream(stream)

    def cache_image(self, image: Obj) -> Obj:
        """An Image as these caches keep it: what the storage quota reads."""
        return cached_image_blobs(image)

    def image_keys(self, image: Obj) -> list[str]:
        """The index keys of a cached Image; a door that finds Images otherwise adds its own."""
        return image_keys(image)

    @property
    def informers(self) -> list[Informer]:
        return [self.limit_ranges, self.resource_quotas, self.imagestreams, self.images]

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

    def namespace_blobs(self, namespace: str) -> dict[str, int]:
        """The blobs the namespace's Images hold (``quota.storage``), with their sizes."""
        history = [
            d for cached in self.imagestreams.list(namespace) for d in stream_digests(cached)
        ]
        pushed = [
            digest
            for image in self.images.by_index(PUSHED_TO_INDEX + namespace)
            if (digest := image_digest(image)) is not None
        ]
        return blobs_held(history, pushed, CachedImages(self.images))

    def imagestream_usage(self, namespace: str, name: str) -> StreamUsage | None:
        """What the cached ImageStream ``namespace/name`` counts, None when the cache has
        no such stream."""
        cached = self.imagestreams.get(f"{namespace}/{name}")
        return None if cached is None else cached_usage(cached)
