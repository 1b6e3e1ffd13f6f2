"""Wiring of the registry-certificates reconciler: one key, looked at when the front
door's Secret (in the service's namespace), the ConfigMap (in node-ca's) or the registry
Config changes, and every resync.

Each watch names its one object (``fieldSelector`` on ``metadata.name``), so that RBAC
can grant the ConfigMap's list and watch by ``resourceNames`` (the API server authorizes
such a list as a request for that name), and so that no other Secret is ever cached: of
the front door's Secret only ``ca.crt`` is kept, never its private key.
"""

from __future__ import annotations

import functools
import logging
import threading

from kubernetes import client

from controller.config import DEFAULT_RECONCILE, ReconcileConfig
from controller.registrycerts.api import ConfigMapApi
from controller.registrycerts.reconciler import RegistryCertsReconciler
from kube.events import Recorder
from kube.informer import Informer, wait_all_synced
from kube.ratelimit import RateLimiter
from kube.runner import Runner
from kube.transforms import projection, strip_managed_fields
from kube.workqueue import WorkQueue
from quota.names import CONFIGS, OPERATOR_GROUP, OPERATOR_VERSION
from quota.objects import Obj
from quota.pullsecrets.dockerconfig import desired_hostnames
from quota.registrycerts import CA_KEY, CONFIGMAP_NAME, FRONTDOOR_TLS_SECRET

log = logging.getLogger(__name__)


class RegistryCertsWiring:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        node_ca_namespace: str,
        internal_hostnames: tuple[str, ...],
        extra_hostnames: tuple[str, ...],
        limiter: RateLimiter,
        recorder: Recorder,
        *,
        reconcile: ReconcileConfig = DEFAULT_RECONCILE,
    ) -> None:
        core = client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        self.secret = Informer(
            "frontdoor-tls-secret",
            functools.partial(core.list_namespaced_secret, namespace),
            field_selector=f"metadata.name={FRONTDOOR_TLS_SECRET}",
            transform=projection({"metadata": {"uid": True}, "data": {CA_KEY: True}}),
        )
        self.configmap = Informer(
            "registry-certificates",
            functools.partial(core.list_namespaced_config_map, node_ca_namespace),
            field_selector=f"metadata.name={CONFIGMAP_NAME}",
            transform=strip_managed_fields,
        )
        # The same object the pull secrets read their route hostnames from, so that the
        # ConfigMap names exactly the hostnames a pull secret carries credentials for.
        self.configs = Informer(
            "registry-certificates-config",
            functools.partial(
                custom.list_cluster_custom_object, OPERATOR_GROUP, OPERATOR_VERSION, CONFIGS
            ),
            field_selector="metadata.name=cluster",
            missing_ok=True,
            transform=projection({"spec": {"routes": True}}),
        )
        self._internal = internal_hostnames
        self._extra = extra_hostnames
        self.queue = WorkQueue(name="registry-certificates")
        self.reconciler = RegistryCertsReconciler(
            api=ConfigMapApi(api, limiter),
            namespace=namespace,
            node_ca_namespace=node_ca_namespace,
            secrets=self.secret,
            configmaps=self.configmap,
            hostnames=self.hostnames,
            recorder=recorder,
        )
        self.runner = Runner(
            "registry-certificates", self.queue, self.reconciler.reconcile, workers=1
        )
        self._resync_seconds = reconcile.resync_seconds
        for informer in self.informers:
            informer.add_handler(self._enqueue)

    def hostnames(self) -> list[str]:
        """What every managed pull secret names (``PullSecretReconciler.hostnames``)."""
        return desired_hostnames(self.configs.get("cluster"), self._extra, self._internal)

    @property
    def informers(self) -> list[Informer]:
        return [self.secret, self.configmap, self.configs]

    def _enqueue(self, kind: str, obj: Obj, old: Obj | None) -> None:
        self.queue.add(self.reconciler.key)

    def start_informers(self, stop: threading.Event) -> None:
        for informer in self.informers:
            informer.start(stop)

    def run(self, stop: threading.Event) -> None:
        if not wait_all_synced(self.informers, stop):
            return
        log.info("registry certificates controller: caches synced")
        self.queue.add(self.reconciler.key)
        self.runner.start(stop)
        while not stop.wait(self._resync_seconds):
            self.queue.add(self.reconciler.key)
        self.runner.join()
