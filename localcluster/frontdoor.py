"""The registry's front door on loopback: a real CNCF registry (``localcluster.registry``)
and our ``frontdoor`` before it, supervised like the other replicas, its address recorded
as a route of ``configs.imageregistry.operator.alauda.io/cluster`` so that every managed
pull secret holds credentials for it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from localcluster.binaries import REPO_ROOT
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.registry import LOG_NAME as REGISTRY_NAME
from localcluster.registry import LocalRegistry
from localcluster.waiting import wait_for
from serving import devcerts

if TYPE_CHECKING:
    from localcluster.stack import Stack

FRONTDOOR_NAME = "frontdoor"
FRONTDOOR_ACCOUNT = "image-registry-frontdoor"
"""The ServiceAccount of ``manifests/base/rbac.yaml`` the front door runs as."""
ROUTE_NAME = "local-frontdoor"
USER_ROLES_MANIFEST = REPO_ROOT / "manifests" / "base" / "registry-roles.yaml"
"""registry-viewer and registry-editor, for users to bind (pull, push)."""
HOSTS = ["127.0.0.1", "localhost"]
PROBE_SECONDS = 5.0


def route_config(hostname: str) -> dict[str, object]:
    """The registry operator's Config naming the front door as a route: the controller
    adds each route's hostname to every pull secret."""
    return {
        "apiVersion": "imageregistry.operator.alauda.io/v1",
        "kind": "Config",
        "metadata": {"name": "cluster"},
        "spec": {"routes": [{"name": ROUTE_NAME, "hostname": hostname}]},
    }


class LocalFrontDoor:
    def __init__(self, stack: Stack, args: list[str] | None = None) -> None:
        self._stack = stack
        self._args = list(args or [])
        self.registry = LocalRegistry(stack.cp.data_dir / "registry", log_dir=stack.cp.log_dir)
        self.port = free_port()
        self.metrics_port = free_port()
        self.serving = devcerts.ensure(stack.cp.data_dir / "frontdoor-certs", HOSTS)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registry host clients push to and pull from."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    @property
    def ca_file(self) -> Path:
        """The CA clients trust for the front door (its own, not the webhook's)."""
        return self.serving.ca_file

    @property
    def process(self) -> ManagedProcess | None:
        return self._stack.supervisor.process(FRONTDOOR_NAME)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float) -> None:
        self._stack.kubectl("apply", "-f", str(USER_ROLES_MANIFEST))
        supervisor = self._stack.supervisor
        supervisor.run(REGISTRY_NAME, self.registry.spawn)
        self.registry.wait_ready(timeout)
        supervisor.run(FRONTDOOR_NAME, self._spawn)
        wait_for(self._ready, timeout=timeout, interval=0.1, what="the front door")
        self._stack.kubectl("apply", "-f", "-", input=json.dumps(route_config(self.host)))

    def _ready(self) -> bool:
        process = self.process
        if process is not None and not process.running():
            raise RuntimeError(f"the front door exited:\n{process.log_tail()}")
        try:
            response = requests.get(
                f"{self.url}/readyz", verify=str(self.ca_file), timeout=PROBE_SECONDS
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def _spawn(self) -> ManagedProcess:
        stack = self._stack
        return ManagedProcess(
            FRONTDOOR_NAME,
            [
                sys.executable,
                "-m",
                "cli",
                "frontdoor",
                f"--bind=127.0.0.1:{self.port}",
                f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
                f"--tls-cert-file={self.serving.cert_file}",
                f"--tls-private-key-file={self.serving.key_file}",
                f"--upstream-registry={self.registry.url}",
                f"--upstream-ca-file={self.registry.ca_file}",
                f"--internal-registry={self.host}",
                f"--kubeconfig={stack.process_kubeconfig(FRONTDOOR_ACCOUNT)}",
                f"--namespace={stack.namespace}",
                *self._args,
            ],
            stack.cp.log_dir,
            env=stack.process_env(),
            cwd=REPO_ROOT,
            ports={"http": self.port, "metrics": self.metrics_port},
        )
