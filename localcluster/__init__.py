"""Developer tooling: a real local Kubernetes control plane on loopback.

etcd, kube-apiserver and kube-controller-manager run as real processes built from the
pinned release in ``hack/controlplane``. Used by ``make dev`` and by the test fixtures.
Not runtime code: nothing in ``webhook`` or ``quota`` imports it.
"""

from localcluster.cluster import ControlPlane, ControlPlaneError

__all__ = ["ControlPlane", "ControlPlaneError"]
