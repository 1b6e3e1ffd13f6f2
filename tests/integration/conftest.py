"""Fixtures: the real local control plane with our server, or an existing cluster.

The local stack is the default. ``E2E_EXISTING_CLUSTER=true`` with ``KUBECONFIG`` runs the
same tests against a cluster where the service is already deployed (``hack/kind-e2e.sh``);
KUBECONFIG alone is ignored so that no test ever runs against a cluster by accident.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from localcluster.cluster import ControlPlane
from localcluster.stack import Stack
from tests.integration.support.cluster import ClusterEnv


def _existing_cluster() -> bool:
    return os.environ.get("E2E_EXISTING_CLUSTER", "").lower() == "true"


def _api(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterEnv]:
    if _existing_cluster():
        kubeconfig = Path(os.environ["KUBECONFIG"])
        kubectl = shutil.which("kubectl")
        assert kubectl, "kubectl must be on PATH for E2E_EXISTING_CLUSTER"
        yield ClusterEnv(kubeconfig, kubectl, _api(kubeconfig))
        return
    # E2E_KEEP_DATA=true keeps the data directory (logs of every process) for a post-mortem.
    keep = os.environ.get("E2E_KEEP_DATA", "").lower() == "true"
    # The server and the controller run as their ServiceAccounts under the manifests'
    # RBAC, so every test also shows the grant is enough (tests/integration/test_rbac.py
    # shows it is no more).
    stack = Stack(ControlPlane(keep_data=keep), as_service_accounts=True)
    stack.start()
    try:
        with _api(stack.kubeconfig) as api:
            yield ClusterEnv(stack.kubeconfig, str(stack.cp.kubectl()), api, stack)
    finally:
        stack.stop()


@pytest.fixture
def namespace(cluster: ClusterEnv) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for finalizers)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
