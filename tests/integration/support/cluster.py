"""What integration tests use to talk to the cluster and to our server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from kubernetes import client, config

from controller.quotausage.reconciler import DEFAULT_QUOTA_RELEASE_GRACE_SECONDS
from localcluster.binaries import REPO_ROOT
from localcluster.cluster import ControlPlane
from localcluster.metrics import metric_sum
from localcluster.stack import CONFIGURATION_NAME, SERVICE_NAMESPACE, Stack
from localcluster.waiting import wait_for

__all__ = ["CONFIGURATION_NAME", "SERVICE_NAMESPACE", "ClusterEnv", "wait_for"]

SERVICE_NAME = "image-registry-webhook"
WEBHOOK_PODS = "app.kubernetes.io/name=image-registry-webhook"
MANIFESTS = REPO_ROOT / "manifests"
"""The install manifests: the kustomize base, its overlays and components, the CRDs."""
METRICS_PORT = 8080
"""The webhook pods' plain-HTTP metrics port in the manifests (container port ``metrics``)."""

PROPAGATION_SECONDS = 5.0
"""A change reaching a watch cache and a work queue: milliseconds on an idle control plane,
seconds on 2 cores shared with a test run."""
CACHE_DEADLINE = 2 * PROPAGATION_SECONDS
"""For our webhook's caches to see an object the test just wrote."""
RELEASE_DEADLINE = DEFAULT_QUOTA_RELEASE_GRACE_SECONDS + 2 * PROPAGATION_SECONDS
"""For the usage reconciler to release a charge: it waits out the release grace first
(the local stack runs the controller with the default)."""


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ClusterEnv:
    """The cluster under test: our local stack, or an existing cluster (kind)."""

    kubeconfig: Path
    kubectl_path: str
    api: client.ApiClient
    stack: Stack | None = None
    _session: requests.Session = field(default_factory=requests.Session)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, manifest: dict[str, Any], *extra: str, check: bool = True) -> Any:
        return self.kubectl("apply", "-f", "-", *extra, input=json.dumps(manifest), check=check)

    # --- our server, over TLS -------------------------------------------------------------

    def server_request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        as_api_server: bool = True,
    ) -> HttpResult:
        """Call our server: directly in the local stack, through the API server's service
        proxy in an existing cluster.

        Locally the call presents the API server's webhook client certificate, as the API
        server does, unless ``as_api_server`` is False (a forger, a registry, a probe).
        """
        if self.stack is not None:
            cert = self.stack.api_server_client_cert if as_api_server else None
            response = self._session.request(
                method,
                self.stack.webhook_url + path,
                data=body,
                headers=headers or {},
                verify=str(self.stack.certs_dir / "ca.crt"),
                cert=(str(cert[0]), str(cert[1])) if cert else None,
                timeout=30,
            )
            return HttpResult(response.status_code, dict(response.headers), response.content)
        proxy = f"/api/v1/namespaces/{SERVICE_NAMESPACE}/services/https:{SERVICE_NAME}:443/proxy"
        response = self.api.call_api(
            proxy + path,
            method,
            header_params=headers or {},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=False,
        )
        raw = response[0]
        return HttpResult(raw.status, dict(raw.headers), raw.data)

    def metrics_pages(self) -> list[str]:
        """The /metrics text of every webhook server process, from its plain-HTTP metrics
        port: directly in the local stack, through the API server's pod proxy in a cluster."""
        if self.stack is not None:
            pages = []
            for url in self.stack.webhook_metrics_urls:
                response = self._session.get(url, timeout=30)
                assert response.status_code == 200, response.text
                pages.append(response.text)
            return pages
        pods = self.kubectl_json("get", "pods", "-n", SERVICE_NAMESPACE, "-l", WEBHOOK_PODS)
        return [
            self.kubectl(
                "get",
                "--raw",
                f"/api/v1/namespaces/{SERVICE_NAMESPACE}/pods/"
                f"{pod['metadata']['name']}:{METRICS_PORT}/proxy/metrics",
            ).stdout
            for pod in pods["items"]
            if pod.get("status", {}).get("phase") == "Running"
        ]

    def metric(self, name: str, **labels: str) -> float:
        """A sample of our server summed over its processes (0 when not yet exported)."""
        return metric_sum(self.metrics_pages(), name, **labels)

    def wait(self, condition: Callable[[], Any], *, timeout: float = 30, what: str) -> Any:
        if self.stack is not None:
            self.stack.cp.check_running()
        return wait_for(condition, timeout=timeout, what=what)


@contextmanager
def own_stack(**stack_args: Any) -> Iterator[ClusterEnv]:
    """A local stack of a test module's own (as the session's, under the manifests'
    RBAC), for what must not touch the shared one: a crash, DEBUG logs."""
    keep = os.environ.get("E2E_KEEP_DATA", "").lower() == "true"  # as conftest.py
    stack = Stack(ControlPlane(keep_data=keep), as_service_accounts=True, **stack_args)
    stack.start()
    try:
        configuration = client.Configuration()
        config.load_kube_config(str(stack.kubeconfig), client_configuration=configuration)
        with client.ApiClient(configuration) as api:
            yield ClusterEnv(stack.kubeconfig, str(stack.cp.kubectl()), api, stack)
    finally:
        stack.stop()
