"""Wiring of the quota usage reconciler: namespaces are the keys.

A change to a quota or an ImageStream queues its namespace. Images are cluster-scoped and
only change when a push records one or a prune deletes one; either may change what a
namespace's storage counts (an Image its history named before the Image was cached, an
index's child), so an Image change queues every namespace with a storage quota: the
queue collapses repeats, and namespaces without one have nothing to recount.
"""

from __future__ import annotations

import functools
import logging
import threading

from kubernetes import client

from controller.config import DEFAULT_RECONCILE, ReconcileConfig
from controller.quotausage.reconciler import (
    DEFAULT_QUOTA_RELEASE_GRACE_SECONDS,
    QuotaUsageReconciler,
)
from kube.informer import Informer, wait_all_synced
from kube.ratelimit import RateLimiter
from kube.resourcequotas import ResourceQuotaClient
from kube.runner import Runner
from kube.transforms import projection, strip_managed_fields
from kube.workqueue import WorkQueue
from quota.imagerefs import image_digest
from quota.names import IMAGE_GROUP, IMAGE_VERSION, IMAGES, IMAGESTREAMS
from quota.objects import Obj, object_namespace
from quota.resourcequota import quota_matches
from quota.resources import RESOURCE_IMAGE_STORAGE
from quota.storage import IMAGE_BLOB_FIELDS, blobs_held
from serving.caches import (
    PUSHED_TO_INDEX,
    CachedImages,
    cached_stream,
    image_keys,
    stream_digests,
)

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 10
"""Seconds per quota status write; a slow write is retried by the work queue."""


class QuotaUsageWiring:
    """Informers on ResourceQuotas, ImageStreams and Images; a change queues the namespaces
    whose usage it may change."""

    def __init__(
        self,
        api: client.ApiClient,
        limiter: RateLimiter,
        *,
        grace_seconds: float = DEFAULT_QUOTA_RELEASE_GRACE_SECONDS,
        reconcile: ReconcileConfig = DEFAULT_RECONCILE,
    ) -> None:
        core = client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        # Quotas are written back (their status): only managedFields go. ImageStreams are
        # counted, and their history's Images' blobs: only that stays cached, the history
        # digests packed as the doors keep them (50,000 streams of 15 items: 229 MiB as
        # projected dicts, 46 MiB packed, by tracemalloc), and Images indexed by digest
        # and by the namespace a push by digest names, so a recount reads its namespace's
        # Images only (not all 100,000 for each of 2,000 namespaces).
        self.quotas = Informer(
            "resourcequotas",
            core.list_resource_quota_for_all_namespaces,
            transform=strip_managed_fields,
        )
        self.imagestreams = Informer(
            "imagestreams",
            functools.partial(
                custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGESTREAMS
            ),
            missing_ok=True,
            transform=cached_stream,
        )
        self.images = Informer(
            "images",
            functools.partial(
                custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGES
            ),
            missing_ok=True,
            index=image_keys,
            transform=projection(IMAGE_BLOB_FIELDS),
        )
        self.queue = WorkQueue(name="quota-usage")
        self.reconciler = QuotaUsageReconciler(
            ResourceQuotaClient(api, timeout=WRITE_TIMEOUT),
            self.quotas,
            self.imagestreams,
            self.images,
            grace_seconds=grace_seconds,
            acquire=limiter.acquire,
            blobs=self.namespace_blobs,
        )
        self.runner = Runner("quota-usage", self.queue, self.reconciler.reconcile, workers=2)
        self._resync_seconds = reconcile.resync_seconds
        self.quotas.add_handler(self._enqueue)
        self.imagestreams.add_handler(self._enqueue)
        self.images.add_handler(self._enqueue_storage)

    @property
    def informers(self) -> list[Informer]:
        return [self.quotas, self.imagestreams, self.images]

    def namespace_blobs(self, namespace: str) -> dict[str, int]:
        """The blobs ``namespace``'s Images hold (``quota.storage``), read as the doors
        read them (``serving.caches.PushCaches.namespace_blobs``): its streams' packed
        history and the Images indexed as pushed by digest to it, with their children."""
        history = [
            d for cached in self.imagestreams.list(namespace) for d in stream_digests(cached)
        ]
        pushed = [
            digest
            for image in self.images.by_index(PUSHED_TO_INDEX + namespace)
            if (digest := image_digest(image)) is not None
        ]
        return blobs_held(history, pushed, CachedImages(self.images))

    def _enqueue(self, kind: str, obj: Obj, old: Obj | None) -> None:
        namespace = object_namespace(obj)
        if namespace:
            self.queue.add(namespace)

    def _enqueue_storage(self, kind: str, obj: Obj, old: Obj | None) -> None:
        # The first list's Images queue nothing: ``run`` queues every namespace once every
        # cache has synced. Walking every quota for each of 100,000 listed Images (2,000
        # quotas) held this cache unsynced for minutes.
        if not self.images.has_synced():
            return
        for quota in self.quotas.list():
            if quota_matches(quota, RESOURCE_IMAGE_STORAGE):
                self.queue.add(object_namespace(quota))

    def _enqueue_all(self) -> None:
        for namespace in {object_namespace(q) for q in self.quotas.list()}:
            self.queue.add(namespace)

    def start_informers(self, stop: threading.Event) -> None:
        for informer in self.informers:
            informer.start(stop)

    def run(self, stop: threading.Event) -> None:
        if not wait_all_synced(self.informers, stop):
            return
        log.info("quota usage controller: caches synced")
        self._enqueue_all()
        self.runner.start(stop)
        while not stop.wait(min(self._resync_seconds, 60)):
            self._enqueue_all()
        self.runner.join()
