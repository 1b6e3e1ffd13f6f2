"""Wiring of the default-rights reconciler: namespaces are the keys.

It watches every RoleBinding (projected to what the rules read), not only ours: a binding
a user took over by dropping our label must still be seen, or every resync would try to
create it again.
"""

from __future__ import annotations

import logging
import threading

from kubernetes import client

from controller.config import DEFAULT_RECONCILE, ReconcileConfig
from controller.rolebindings.api import RoleBindingApi
from controller.rolebindings.reconciler import RoleBindingReconciler
from kube.informer import DELETED, Informer, wait_all_synced
from kube.ratelimit import RateLimiter
from kube.runner import Runner
from kube.transforms import projection
from kube.workqueue import WorkQueue
from quota.objects import Obj, mapping, metadata, object_name, object_namespace
from quota.rolebindings import BINDING_NAMES, OPT_OUT_KEY

log = logging.getLogger(__name__)

WORKERS = 2
"""Two writes per new namespace at most: the backlog is a namespace count, not an SA one."""


def _opt_out_label(obj: Obj | None) -> object:
    return mapping(metadata(obj or {}).get("labels")).get(OPT_OUT_KEY)


class RoleBindingWiring:
    def __init__(
        self,
        api: client.ApiClient,
        excluded_namespaces: frozenset[str],
        limiter: RateLimiter,
        *,
        reconcile: ReconcileConfig = DEFAULT_RECONCILE,
    ) -> None:
        core = client.CoreV1Api(api)
        rbac = client.RbacAuthorizationV1Api(api)
        self.namespaces = Informer(
            "rolebinding-namespaces",
            core.list_namespace,
            transform=projection({"metadata": {"labels": True}}),
        )
        self.rolebindings = Informer(
            "rolebindings",
            rbac.list_role_binding_for_all_namespaces,
            transform=projection(
                {
                    "metadata": {"uid": True, "labels": True, "annotations": True},
                    "roleRef": True,
                    "subjects": True,
                }
            ),
        )
        self.queue = WorkQueue(name="default-rolebindings")
        self.reconciler = RoleBindingReconciler(
            api=RoleBindingApi(api, limiter),
            namespaces=self.namespaces,
            rolebindings=self.rolebindings,
            excluded_namespaces=excluded_namespaces,
        )
        self.runner = Runner(
            "default-rolebindings", self.queue, self.reconciler.reconcile, workers=WORKERS
        )
        self._resync_seconds = reconcile.resync_seconds
        self.namespaces.add_handler(self._on_namespace)
        self.rolebindings.add_handler(self._on_rolebinding)

    @property
    def informers(self) -> list[Informer]:
        return [self.namespaces, self.rolebindings]

    def _on_namespace(self, kind: str, obj: Obj, old: Obj | None) -> None:
        if kind == DELETED:
            return
        if old is not None and _opt_out_label(old) == _opt_out_label(obj):
            return
        self._enqueue(object_name(obj))

    def _on_rolebinding(self, kind: str, obj: Obj, old: Obj | None) -> None:
        if object_name(obj) in BINDING_NAMES:
            self._enqueue(object_namespace(obj))

    def _enqueue(self, namespace: str) -> None:
        if namespace and self.reconciler.managed(namespace):
            self.queue.add(namespace)

    def _enqueue_all(self) -> None:
        for ns in self.namespaces.list():
            self._enqueue(object_name(ns))

    def start_informers(self, stop: threading.Event) -> None:
        for informer in self.informers:
            informer.start(stop)

    def run(self, stop: threading.Event) -> None:
        if not wait_all_synced(self.informers, stop):
            return
        log.info("default rolebindings controller: caches synced")
        self._enqueue_all()
        self.runner.start(stop)
        while not stop.wait(self._resync_seconds):
            self._enqueue_all()
        self.runner.join()
