"""Fault injection: etcd and kube-apiserver killed and restarted while ServiceAccounts
and ImageStreams are being created through the API server.

Creates that meet the outage fail, as they would for any client; what must hold is what
the service keeps: its caches resync, the backlog drains, every ServiceAccount ends with
exactly its one managed Secret, and the quota's usage is the number of ImageStreams that
exist (a charge for a create the outage cut off is released).

Local stack only: it kills the control plane's processes, those of a stack of its own,
so that the outage (requests refused while the API server starts, replicas restarted)
touches no other test's session, its logs or its audit log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.support.cluster import RELEASE_DEADLINE, ClusterEnv, own_stack
from tests.integration.support.load import Load
from tests.integration.support.objects import quota, used
from tests.integration.support.pullsecrets import every_account_has_its_one_secret

pytestmark = pytest.mark.local_only

LOAD_SECONDS = 20.0
"""How long the load runs; the crash comes a quarter of the way in."""
LOAD_PER_SECOND = 10.0
"""ServiceAccounts (each with an ImageStream) per second: as test_replica_restarts."""
RESTART_DEADLINE = 120.0
"""For etcd and kube-apiserver to serve again (their cold start on 2 cores)."""
HEAL_DEADLINE = RELEASE_DEADLINE + 30.0
"""The backlog drains (about 12 ServiceAccounts a second at --kube-api-qps 50) and a
leaked charge waits out the release grace."""


def streams(cluster: ClusterEnv, namespace: str) -> int:
    items = cluster.kubectl_json("get", "imagestreams.image.alauda.io", "-n", namespace)["items"]
    return len(items)


@pytest.fixture(scope="module")
def crash_cluster() -> Iterator[ClusterEnv]:
    with own_stack() as cluster:
        yield cluster


def test_a_control_plane_crash_mid_load_leaves_no_duplicate_secret_and_no_leaked_charge(
    crash_cluster: ClusterEnv,
) -> None:
    cluster = crash_cluster
    assert cluster.stack is not None
    namespace = f"crash-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.apply(quota({"alauda.io/imagestreams": "10000"}), "-n", namespace)
    cluster.wait(lambda: used(cluster, namespace) == "0", timeout=30, what="usage counted")

    load = Load(cluster.api, namespace, per_second=LOAD_PER_SECOND).start()
    try:
        load.keep_running_until(LOAD_SECONDS / 4)
        cluster.stack.cp.crash_and_restart(["etcd", "kube-apiserver"], timeout=RESTART_DEADLINE)
        load.keep_running_until(LOAD_SECONDS)
    finally:
        load.finish()
    assert load.created > len(load.failures), "no create got through: the load was no load"
    assert load.failures, "no create met the outage: the fault was not injected"

    cluster.wait(
        lambda: every_account_has_its_one_secret(cluster, namespace),
        timeout=HEAL_DEADLINE,
        what="every ServiceAccount's one Secret",
    )
    cluster.wait(
        lambda: used(cluster, namespace) == str(streams(cluster, namespace)),
        timeout=HEAL_DEADLINE,
        what="the quota's usage to equal the ImageStreams that exist",
    )
    # And after more creates the charge still counts right (the caches resynced).
    cluster.apply(quota({"alauda.io/imagestreams": str(streams(cluster, namespace) + 1)}),
                  "-n", namespace)  # fmt: skip
    cluster.wait(
        lambda: cluster.apply(
            {"apiVersion": "image.alauda.io/v1", "kind": "ImageStream",
             "metadata": {"name": "after"}, "spec": {}},
            "-n", namespace, check=False,
        ).returncode == 0,
        timeout=HEAL_DEADLINE,
        what="a create within the quota after the restart",
    )  # fmt: skip
    over = cluster.apply(
        {"apiVersion": "image.alauda.io/v1", "kind": "ImageStream",
         "metadata": {"name": "over"}, "spec": {}},
        "-n", namespace, check=False,
    )  # fmt: skip
    assert "exceeded quota" in over.stderr
