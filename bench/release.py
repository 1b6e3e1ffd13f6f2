"""``python -m bench.release``: how long a delete takes to free quota, ours next to native
quota's, in one run against one local control plane (``make quota-release``).

Ours: a stream the controller has counted (it existed before the quota, so the quota's
first usage is the recount) is deleted, and the time until ``alauda.io/imagestreams``
drops is measured. Native: the same with a ConfigMap and ``count/configmaps``, which
kube-controller-manager's quota controller frees. Both are timed by one watch on the
quota from the delete's answer (``localcluster.quotarelease``), rounds alternating so that
load on the machine falls on both alike. Not part of ``make test``: it starts its own stack.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

from kubernetes import client, config

from bench import samples
from bench.report import alternate, progress
from controller.quotausage.reconciler import DEFAULT_QUOTA_RELEASE_GRACE_SECONDS
from localcluster.cluster import ControlPlane
from localcluster.quotarelease import release_seconds
from localcluster.stack import Stack
from localcluster.waiting import wait_for
from quota.names import IMAGE_GROUP, IMAGE_VERSION, IMAGESTREAMS

OURS = "alauda.io/imagestreams"
NATIVE = "count/configmaps"
NAMESPACE = "quota-release"
ROUNDS = 5
"""Deletes timed per quota resource: a handful shows the spread; each takes a second."""
TIMEOUT_SECONDS = DEFAULT_QUOTA_RELEASE_GRACE_SECONDS + 10
"""Long enough to see a release that waits out the grace, as ours did before."""
HARD = "10"
"""Room for what a round counts: its one object (and the namespace's kube-root-ca.crt)."""


def _api(stack: Stack) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(str(stack.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def _used(core: client.CoreV1Api, quota: str, resource: str) -> str | None:
    read = core.read_namespaced_resource_quota(quota, NAMESPACE)
    value: str | None = ((read.status and read.status.used) or {}).get(resource)
    return value


class Rounds:
    """Timed deletes of one resource's objects, each made and counted before its delete."""

    def __init__(self, api: client.ApiClient, resource: str) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._resource = resource
        self._made = 0

    def _count(self) -> int:
        """Objects of the resource's kind in the namespace, as a recount sees them."""
        if self._resource == NATIVE:
            return len(self._core.list_namespaced_config_map(NAMESPACE).items)
        listed = self._custom.list_namespaced_custom_object(
            IMAGE_GROUP, IMAGE_VERSION, NAMESPACE, IMAGESTREAMS
        )
        return len(listed["items"])

    def _create(self, name: str) -> Callable[[], object]:
        """Make one object of the resource's kind; its delete."""
        if self._resource == NATIVE:
            self._core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": name}})
            return lambda: self._core.delete_namespaced_config_map(name, NAMESPACE)
        body = samples.created(samples.imagestream(NAMESPACE, name, tags=0, history=0))
        self._custom.create_namespaced_custom_object(
            IMAGE_GROUP, IMAGE_VERSION, NAMESPACE, IMAGESTREAMS, body
        )
        return lambda: self._custom.delete_namespaced_custom_object(
            IMAGE_GROUP, IMAGE_VERSION, NAMESPACE, IMAGESTREAMS, name
        )

    def __call__(self) -> float:
        """The object is made before its quota, so the quota's first usage is a recount
        (ours: the usage controller's; native: kube-controller-manager's) that has seen it
        stored: a delete of an object made long before, which no in-flight charge explains."""
        self._made += 1
        name = f"{self._resource.rsplit('/', 1)[1]}-{self._made}"
        delete = self._create(name)
        stored = self._count()
        quota = f"release-{name}"
        self._core.create_namespaced_resource_quota(
            NAMESPACE, samples.resource_quota(quota, {self._resource: HARD})
        )
        wait_for(
            lambda: _used(self._core, quota, self._resource) == str(stored),
            timeout=TIMEOUT_SECONDS,
            what=f"{quota} to count {name}",
        )
        try:
            return release_seconds(
                self._api,
                NAMESPACE,
                quota,
                self._resource,
                str(stored - 1),
                delete,
                timeout=TIMEOUT_SECONDS,
            )
        finally:
            self._core.delete_namespaced_resource_quota(quota, NAMESPACE)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.release", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="deletes timed per resource")
    args = parser.parse_args(argv)
    progress("starting the local stack (control plane, webhook, controller)")
    stack = Stack(ControlPlane())
    stack.start()
    try:
        with _api(stack) as api:
            core = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            # kube-controller-manager publishes this ConfigMap into every namespace: made
            # first, it cannot change the native count while a round measures it.
            wait_for(
                lambda: core.read_namespaced_config_map("kube-root-ca.crt", NAMESPACE),
                timeout=TIMEOUT_SECONDS,
                what="the namespace's kube-root-ca.crt",
            )
            ours, native = alternate(args.rounds, Rounds(api, OURS), Rounds(api, NATIVE))
    finally:
        stack.stop()
    for label, seconds in ((OURS, ours), (NATIVE, native)):
        print(
            f"release after delete, {label}: median {statistics.median(seconds):.3f} s, "
            f"max {max(seconds):.3f} s over {len(seconds)} deletes "
            f"({', '.join(f'{s:.3f}' for s in seconds)})"
        )
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
