"""The controller's replicas as tests see them: who holds the Lease, and how long a
replica may take to start."""

from __future__ import annotations

from localcluster.stack import SERVICE_NAMESPACE
from tests.integration.support.cluster import ClusterEnv

START_DEADLINE = 30.0
"""For a controller to list its caches and campaign: on a busy 2-core machine."""
LEASE = "image-registry-controller"
"""The controllers' leader election Lease (in the service's namespace)."""


def holder(cluster: ClusterEnv) -> str:
    lease = cluster.kubectl_json("get", "lease", LEASE, "-n", SERVICE_NAMESPACE)
    return str(lease["spec"].get("holderIdentity") or "")
