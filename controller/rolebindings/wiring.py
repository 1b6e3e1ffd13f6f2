"""Wiring of the default-rights reconciler: namespaces are the keys.

It watches every RoleBinding (projected to what the rules read), not only ours: a binding
a user took over by dropping our label must still be seen, or every resync would try to
create it again. The ``builder`` accounts are read from the pull-secret reconciler's
ServiceAccount cache, shared rather than watched twice (client-go's shared informers):
that wiring owns and starts it; this one adds a handler and waits for it to sync.
"""

from __future__ import annotations

import logging
import threading

from kubernetes import client

from controller.config import DEFAULT_RECONCILE, ReconcileConfig
from controller.rolebindings.api import BuilderAccountApi, RoleBindingApi
from controller.rolebindings.reconciler import RoleBindingReconciler
from kube.informer import DELETED, Informer, wait_all_synced
from kube.ratelimit import RateLimiter
from kube.runner import Runner
from kube.transforms import projection
from kube.workqueue import WorkQueue
from quota.objects import Obj, mapping, metadata, object_name, object_namespace
from quota.rolebindings import BINDING_NAMES, BUILDER_ACCOUNT, OPT_OUT_KEY

log = logging.getLogger(__name__)

WORKERS = 2
"""Three writes per new namespace at most: the backlog is a namespace count, not an SA one."""


def _opt_out_label(obj: Obj | None) -> object:
    return mapping(metadata(obj or {}).get("labels")).get(OPT_OUT_KEY)


class RoleBindingWiring:
    def __init__(
        self,
        api: client.ApiClient,
        excluded_namespaces: frozenset[str],
        limiter: RateLimiter,
        serviceaccounts: Informer,
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
            accounts=BuilderAccountApi(api, limiter),
            serviceaccounts=serviceaccounts,
            excluded_namespaces=excluded_namespaces,
        )
        self.runner = Runner(
            "default-rolebindings", self.queue, self.reconciler.reconcile, workers=WORKERS
        )
        self._resync_seconds = reconcile.resync_seconds
        self.serviceaccounts = serviceaccounts
        self.namespaces.add_handler(self._on_namespace)
        self.rolebindings.add_handler(self._on_rolebinding)
        serviceaccounts.add_handler(self._on_serviceaccount)

    @property
    def informers(self) -> list[Informer]:
        """The caches this wiring owns and starts (the ServiceAccounts' is not one)."""
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

    def _on_serviceaccount(self, kind: str, obj: Obj, old: Obj | None) -> None:
        # A deleted builder is made again, as Kubernetes makes ``default`` again.
        if kind == DELETED and object_name(obj) == BUILDER_ACCOUNT:
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
        if not wait_all_synced([*self.informers, self.serviceaccounts], stop):
            return
        log.info("default rolebindings controller: caches synced")
        self._enqueue_all()
        self.runner.start(stop)
        while not stop.wait(self._resync_seconds):
            self._enqueue_all()
        self.runner.join()
