"""Wiring of the quota usage reconciler: namespaces are the keys."""

from __future__ import annotations

import logging
import threading

from kubernetes import client

from controller.config import DEFAULT_RECONCILE, ReconcileConfig
from controller.quotausage.reconciler import (
    DEFAULT_QUOTA_RELEASE_GRACE_SECONDS,
    QuotaUsageReconciler,
)
from kube.informer import Informer, wait_all_synced
from kube.metadata import metadata_list_func
from kube.ratelimit import RateLimiter
from kube.resourcequotas import ResourceQuotaClient
from kube.runner import Runner
from kube.transforms import projection, strip_managed_fields
from kube.workqueue import WorkQueue
from quota.names import IMAGE_API_VERSION, IMAGESTREAMS
from quota.objects import Obj, object_namespace

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 10
"""Seconds per quota status write; a slow write is retried by the work queue."""


class QuotaUsageWiring:
    """Informers on ResourceQuotas and ImageStreams; each change queues its namespace."""

    def __init__(
        self,
        api: client.ApiClient,
        limiter: RateLimiter,
        *,
        grace_seconds: float = DEFAULT_QUOTA_RELEASE_GRACE_SECONDS,
        reconcile: ReconcileConfig = DEFAULT_RECONCILE,
    ) -> None:
        core = client.CoreV1Api(api)
        # Quotas are written back (their status): only managedFields go. ImageStreams are
        # only counted: their metadata is all that crosses the wire and stays cached.
        self.quotas = Informer(
            "resourcequotas",
            core.list_resource_quota_for_all_namespaces,
            transform=strip_managed_fields,
        )
        self.imagestreams = Informer(
            "imagestreams",
            metadata_list_func(api, f"/apis/{IMAGE_API_VERSION}/{IMAGESTREAMS}"),
            missing_ok=True,
            transform=projection({}),
        )
        self.queue = WorkQueue(name="quota-usage")
        self.reconciler = QuotaUsageReconciler(
            ResourceQuotaClient(api, timeout=WRITE_TIMEOUT),
            self.quotas,
            self.imagestreams,
            grace_seconds=grace_seconds,
            acquire=limiter.acquire,
        )
        self.runner = Runner("quota-usage", self.queue, self.reconciler.reconcile, workers=2)
        self._resync_seconds = reconcile.resync_seconds
        self.quotas.add_handler(self._enqueue)
        self.imagestreams.add_handler(self._enqueue)

    @property
    def informers(self) -> list[Informer]:
        return [self.quotas, self.imagestreams]

    def _enqueue(self, kind: str, obj: Obj, old: Obj | None) -> None:
        namespace = object_namespace(obj)
        if namespace:
            self.queue.add(namespace)

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
