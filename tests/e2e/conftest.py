"""The service as pods on a real node: one cluster and one install for the whole suite.

``make e2e`` (and so ``make test``) runs this suite after the integration suite. It starts
a control plane with one node (``localcluster.node``), loads the images built from the
project's files into the node's containerd, and installs the shipped overlay the way
``docs/install.md`` tells a user (``support/install.py``). What a platform engineer would
look at (``kubectl get pods -A -o wide``, Events, figures) is printed after the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from localcluster import images
from tests.e2e.support import install
from tests.e2e.support.nodecluster import NodeCluster
from tests.integration.support.cluster import ClusterEnv

INSTALL_TIMEOUT = 300.0
"""From ``kubectl apply -k`` to every Deployment available: about a minute here (the
webhook pods wait for the certificate the controller writes); the rest is margin."""
NODE_CA_TIMEOUT = 120.0
"""From install to node-ca's files for the route: the controller publishes the CA within
seconds, the kubelet refreshes the optional ConfigMap volume on its next pod sync (the
node's ``syncFrequency``), node-ca copies it within its 10 s poll."""
SERVICE_DEPLOYMENTS = (
    "image-registry-controller",
    "image-registry-webhook",
    "image-registry-frontdoor",
    "image-registry-upstream",
)

REPORT: list[tuple[str, str]] = []
"""(title, text) sections printed after the run: what the issue asks to be shown."""


def show(title: str, text: str) -> None:
    REPORT.append((title, text.rstrip()))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for title, text in REPORT:
        terminalreporter.write_sep("-", title)
        terminalreporter.write_line(text)


@dataclass
class E2E:
    cluster: NodeCluster
    env: ClusterEnv
    installed: install.Install
    images: install.Images
    work_dir: Path
    timings: dict[str, float] = field(default_factory=dict)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        return self.cluster.kubectl(*args, check=check, input=input)


def _api(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def _available(cluster: NodeCluster, name: str) -> bool:
    deployment = cluster.get("deployment", "-n", install.NAMESPACE, name)
    status = deployment.get("status", {})
    wanted = deployment["spec"].get("replicas", 1)
    return bool(
        status.get("observedGeneration") == deployment["metadata"]["generation"]
        and status.get("updatedReplicas") == wanted
        and status.get("availableReplicas") == wanted
    )


@pytest.fixture(scope="session")
def e2e() -> Iterator[E2E]:
    keep = os.environ.get("E2E_KEEP_DATA", "").lower() == "true"
    work = Path(tempfile.mkdtemp(prefix="registry-v2-e2e-"))
    built = images.built_images()
    cluster = NodeCluster(work / "cluster", keep_data=keep)
    cluster.start()
    try:
        for archive in (built.policy.archive, built.registry.archive):
            cluster.node.import_image(archive)
        refs = install.Images(policy=built.policy.name, registry=built.registry.name)
        installed = install.write_kustomization(
            work / "install", refs, hosts_dir=cluster.node.hosts_dir
        )
        started = time.monotonic()
        cluster.kubectl("apply", "-k", str(installed.directory))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        cluster.kubectl("apply", "-f", "-", input=install.route_document())
        for name in SERVICE_DEPLOYMENTS:
            cluster.wait(
                lambda name=name: _available(cluster, name),
                timeout=INSTALL_TIMEOUT,
                what=f"Deployment {name} available",
                interval=1.0,
            )
        timings = {"install_seconds": round(time.monotonic() - started, 1)}
        # node-ca writes what the node needs to trust the route; pods pull only after it.
        trusted = cluster.node.hosts_dir / install.ROUTE_HOST / "hosts.toml"
        cluster.wait(trusted.exists, timeout=NODE_CA_TIMEOUT, what=f"node-ca writing {trusted}")
        timings["node_trusts_registry_seconds"] = round(time.monotonic() - started, 1)
        with _api(cluster.kubeconfig) as api:
            env = ClusterEnv(cluster.kubeconfig, str(cluster.cp.kubectl()), api)
            yield E2E(cluster, env, installed, refs, work, timings)
    finally:
        show(
            "kubectl get pods -A -o wide",
            cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False),
        )
        cluster.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
