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
from quota.names import IMAGE_GROUP, IMAGE_VERSION, IMAGES, IMAGESTREAMS
from quota.objects import Obj, object_namespace
from quota.resourcequota import quota_matches
from quota.resources import RESOURCE_IMAGE_STORAGE
from quota.storage import IMAGE_BLOB_FIELDS, STREAM_HISTORY_FIELDS

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
        # counted, and their history's Images' blobs: only that stays cached.
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
            transform=projection(STREAM_HISTORY_FIELDS),
        )
        self.images = Informer(
            "images",
            functools.partial(
                custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGES
            ),
            missing_ok=True,
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
        )
        self.runner = Runner("quota-usage", self.queue, self.reconciler.reconcile, workers=2)
        self._resync_seconds = reconcile.resync_seconds
        self.quotas.add_handler(self._enqueue)
        self.imagestreams.add_handler(self._enqueue)
        self.images.add_handler(self._enqueue_storage)

    @property
    def informers(self) -> list[Informer]:
        return [self.quotas, self.imagestreams, self.images]

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
