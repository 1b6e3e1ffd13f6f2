"""Wiring of the certificate manager: one key (the Secret), looked at when the Secret
changes (``certs rotate`` writes it) and every ``RECHECK_SECONDS``."""

from __future__ import annotations

import functools
import logging
import threading

from kubernetes import client

from controller.certificates.api import CertificateApi
from controller.certificates.material import SECRET_NAME
from controller.certificates.reconciler import (
    RECHECK_SECONDS,
    CertificateConfig,
    CertificateReconciler,
)
from kube.informer import Informer, wait_all_synced
from kube.ratelimit import RateLimiter
from kube.runner import Runner
from kube.workqueue import WorkQueue
from quota.objects import Obj

log = logging.getLogger(__name__)


class CertificateWiring:
    def __init__(
        self, api: client.ApiClient, config: CertificateConfig, limiter: RateLimiter
    ) -> None:
        core = client.CoreV1Api(api)
        self.key = f"{config.namespace}/{SECRET_NAME}"
        # A watch on the one Secret: a rotation request is acted on at once.
        self.secret = Informer(
            "certificate-secret",
            functools.partial(core.list_namespaced_secret, config.namespace),
            field_selector=f"metadata.name={SECRET_NAME}",
        )
        self.queue = WorkQueue(name="certificates")
        self.reconciler = CertificateReconciler(
            CertificateApi(api, limiter),
            config,
        )
        self.runner = Runner("certificates", self.queue, self.reconciler.reconcile, workers=1)
        self.secret.add_handler(self._enqueue)

    @property
    def informers(self) -> list[Informer]:
        return [self.secret]

    def _enqueue(self, kind: str, obj: Obj, old: Obj | None) -> None:
        self.queue.add(self.key)

    def start_informers(self, stop: threading.Event) -> None:
        for informer in self.informers:
            informer.start(stop)

    def run(self, stop: threading.Event) -> None:
        if not wait_all_synced(self.informers, stop):
            return
        log.info("certificate manager: started")
        self.queue.add(self.key)
        self.runner.start(stop)
        while not stop.wait(RECHECK_SECONDS):
            self.queue.add(self.key)
        self.runner.join()
