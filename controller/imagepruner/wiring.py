"""Wiring of the image-pruner reconciler: one key, looked at when the ImagePruner, the
CronJob or one of its Jobs changes, and every resync.

The ImagePruner and the CronJob are watched by name (``fieldSelector``), the Jobs by the
label the CronJob's template gives them, all in the service's namespace: nothing else in
the cluster is cached.
"""

from __future__ import annotations

import functools
import logging
import threading

from kubernetes import client

from controller.config import DEFAULT_RECONCILE, ReconcileConfig
from controller.imagepruner.api import PrunerApi
from controller.imagepruner.reconciler import ImagePrunerReconciler
from kube.informer import Informer, wait_all_synced
from kube.ratelimit import RateLimiter
from kube.runner import Runner
from kube.transforms import projection, strip_managed_fields
from kube.workqueue import WorkQueue
from quota.imagepruner.cronjob import (
    CRONJOB_NAME,
    IMAGEPRUNERS,
    JOB_SELECTOR,
    PRUNER_NAME,
    PrunerSettings,
)
from quota.names import OPERATOR_GROUP, OPERATOR_VERSION
from quota.objects import Obj

log = logging.getLogger(__name__)


class ImagePrunerWiring:
    def __init__(
        self,
        api: client.ApiClient,
        settings: PrunerSettings,
        limiter: RateLimiter,
        *,
        reconcile: ReconcileConfig = DEFAULT_RECONCILE,
    ) -> None:
        custom = client.CustomObjectsApi(api)
        batch = client.BatchV1Api(api)
        self.pruners = Informer(
            "imagepruners",
            functools.partial(
                custom.list_cluster_custom_object, OPERATOR_GROUP, OPERATOR_VERSION, IMAGEPRUNERS
            ),
            field_selector=f"metadata.name={PRUNER_NAME}",
            missing_ok=True,  # standalone mode's CRD may not be installed
            transform=strip_managed_fields,
        )
        self.cronjobs = Informer(
            "image-pruner-cronjob",
            functools.partial(batch.list_namespaced_cron_job, settings.namespace),
            field_selector=f"metadata.name={CRONJOB_NAME}",
            transform=strip_managed_fields,
        )
        self.jobs = Informer(
            "image-pruner-jobs",
            functools.partial(batch.list_namespaced_job, settings.namespace),
            label_selector=JOB_SELECTOR,
            transform=projection(
                {
                    "metadata": {"creationTimestamp": True, "ownerReferences": True},
                    "status": True,
                }
            ),
        )
        self.queue = WorkQueue(name="image-pruner")
        self.reconciler = ImagePrunerReconciler(
            api=PrunerApi(api, limiter),
            settings=settings,
            pruners=self.pruners,
            cronjobs=self.cronjobs,
            jobs=self.jobs,
        )
        self.runner = Runner("image-pruner", self.queue, self.reconciler.reconcile, workers=1)
        self._resync_seconds = reconcile.resync_seconds
        for informer in self.informers:
            informer.add_handler(self._enqueue)

    @property
    def informers(self) -> list[Informer]:
        return [self.pruners, self.cronjobs, self.jobs]

    def _enqueue(self, kind: str, obj: Obj, old: Obj | None) -> None:
        self.queue.add(self.reconciler.key)

    def start_informers(self, stop: threading.Event) -> None:
        for informer in self.informers:
            informer.start(stop)

    def run(self, stop: threading.Event) -> None:
        if not wait_all_synced(self.informers, stop):
            return
        log.info("image pruner controller: caches synced")
        self.queue.add(self.reconciler.key)
        self.runner.start(stop)
        while not stop.wait(self._resync_seconds):
            self.queue.add(self.reconciler.key)
        self.runner.join()
