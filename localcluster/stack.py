"""The whole local stack: control plane, CRDs, and our webhook server and controller.

``make dev`` and the pytest fixtures both start exactly this, so what developers run is
what the tests prove.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from kubernetes import client, config

from kube import certs
from kube.settings import Settings
from localcluster import kubeconfig
from localcluster.binaries import REPO_ROOT
from localcluster.cluster import ControlPlane
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.waiting import wait_for
from webhook import devcerts, registration

log = logging.getLogger(__name__)

CRD_DIR = REPO_ROOT / "manifests" / "crds"
RBAC_MANIFEST = REPO_ROOT / "manifests" / "deploy" / "10-rbac.yaml"
SERVICE_NAMESPACE = "image-registry-system"
CONFIGURATION_NAME = "image-registry-webhook"
SERVER_ACCOUNT = "image-registry-webhook"
CONTROLLER_ACCOUNT = "image-registry-controller"
"""The ServiceAccounts of ``RBAC_MANIFEST`` the two processes run as in a cluster."""
TOKEN_DURATION = "24h"
"""Long enough for any test session; ``make dev`` runs as admin and needs no token."""


class Stack:
    """Control plane plus our processes; :meth:`stop` stops everything it started."""

    def __init__(
        self,
        control_plane: ControlPlane,
        *,
        with_controller: bool = True,
        controller_args: list[str] | None = None,
        as_service_accounts: bool = False,
    ) -> None:
        """``as_service_accounts``: run the server and the controller with tokens of their
        ServiceAccounts under the manifests' RBAC, as in a cluster, with the stack (not the
        server) registering the webhooks; else with the admin's credentials, the server
        registering itself (``make dev``)."""
        self.cp = control_plane
        self.with_controller = with_controller
        self.controller_args = list(controller_args or [])
        self.as_service_accounts = as_service_accounts
        self.webhook: ManagedProcess | None = None
        self.controller: ManagedProcess | None = None
        self.webhook_port = 0
        self.certs_dir = self.cp.data_dir / "webhook-certs"

    @property
    def kubeconfig(self) -> Path:
        return self.cp.kubeconfig

    @property
    def client_ca_file(self) -> Path:
        """The CA of the API server's webhook client certificate (the control plane's)."""
        assert self.cp.pki is not None, "start the control plane first"
        return self.cp.pki.webhook_client_ca_cert

    @property
    def api_server_client_cert(self) -> tuple[Path, Path]:
        """Certificate and key with which the API server calls webhooks: a test that
        stands in for the API server at our port presents them."""
        assert self.cp.pki is not None, "start the control plane first"
        return self.cp.pki.webhook_client

    @property
    def webhook_url(self) -> str:
        return f"https://127.0.0.1:{self.webhook_port}"

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        """Run kubectl against the stack; return stdout, raise with stderr on failure."""
        result = subprocess.run(
            [str(self.cp.kubectl()), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            )
        return result.stdout

    def start(self, timeout: float = 120.0) -> None:
        try:
            self.cp.start()
            self.install_crds(timeout)
            self.kubectl("create", "namespace", SERVICE_NAMESPACE)
            if self.as_service_accounts:
                self._install_rbac()
                self._register_webhooks()
            self.start_webhook(timeout)
            if self.with_controller:
                self.start_controller()
        except BaseException:
            self.stop()
            raise

    def install_crds(self, timeout: float) -> None:
        self.kubectl("apply", "-f", str(CRD_DIR))
        self.kubectl(
            "wait",
            "--for=condition=Established",
            f"--timeout={int(timeout)}s",
            "-f",
            str(CRD_DIR),
        )

    def process_kubeconfig(self, account: str) -> Path:
        """The kubeconfig a process runs with: its ServiceAccount's, or the admin's."""
        if not self.as_service_accounts:
            return self.kubeconfig
        return self.cp.data_dir / f"{account}.kubeconfig"

    def _install_rbac(self) -> None:
        self.kubectl("apply", "-f", str(RBAC_MANIFEST))
        for account in (SERVER_ACCOUNT, CONTROLLER_ACCOUNT):
            token = self.kubectl(
                "create", "token", account, "-n", SERVICE_NAMESPACE, f"--duration={TOKEN_DURATION}"
            ).strip()
            assert self.cp.pki is not None
            kubeconfig.write_token(
                self.process_kubeconfig(account),
                server=self.cp.server,
                ca_cert=self.cp.pki.ca_cert,
                token=token,
                user=f"system:serviceaccount:{SERVICE_NAMESPACE}:{account}",
            )

    def _register_webhooks(self) -> None:
        """What the manifests do in a cluster: the serving process has no right to."""
        files = devcerts.ensure(
            self.certs_dir, certs.serving_hosts(SERVER_ACCOUNT, SERVICE_NAMESPACE)
        )
        self.webhook_port = self.webhook_port or free_port()
        mutating, validating = registration.desired_configurations(
            name=CONFIGURATION_NAME,
            ca_bundle=files.ca_file.read_bytes(),
            excluded_namespaces=Settings(namespace=SERVICE_NAMESPACE).never_touched_namespaces,
            url=self.webhook_url,
        )
        configuration = client.Configuration()
        config.load_kube_config(str(self.kubeconfig), client_configuration=configuration)
        with client.ApiClient(configuration) as api:
            registration.register(api, mutating, validating)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def start_webhook(self, timeout: float = 60.0) -> None:
        self.webhook_port = self.webhook_port or free_port()
        self.webhook = ManagedProcess(
            "webhook",
            [
                sys.executable,
                "-m",
                "cli",
                "serve",
                f"--bind=127.0.0.1:{self.webhook_port}",
                f"--dev-certs-dir={self.certs_dir}",
                f"--client-ca-file={self.client_ca_file}",
                *([] if self.as_service_accounts else ["--register"]),
                f"--webhook-url={self.webhook_url}",
                f"--kubeconfig={self.process_kubeconfig(SERVER_ACCOUNT)}",
                f"--namespace={SERVICE_NAMESPACE}",
                f"--configuration-name={CONFIGURATION_NAME}",
            ],
            self.cp.log_dir,
            env=self._env(),
            cwd=REPO_ROOT,
        )
        self.wait_webhook_called(timeout)

    def stop_webhook(self) -> None:
        if self.webhook is not None:
            self.webhook.stop()
            self.webhook = None

    def start_controller(self) -> None:
        self.controller = self.spawn_controller("controller")

    def spawn_controller(self, name: str) -> ManagedProcess:
        """A controller process; more than one compete for the leader Lease."""
        return ManagedProcess(
            name,
            [
                sys.executable,
                "-m",
                "cli",
                "controller",
                f"--kubeconfig={self.process_kubeconfig(CONTROLLER_ACCOUNT)}",
                f"--namespace={SERVICE_NAMESPACE}",
                "--metrics-bind=127.0.0.1:0",
                *self.controller_args,
            ],
            self.cp.log_dir,
            env=self._env(),
            cwd=REPO_ROOT,
        )

    def stop_controller(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def webhook_get(self, path: str) -> tuple[int, bytes]:
        """GET a path of our server over TLS, trusting the dev CA."""
        context = ssl.create_default_context(cafile=str(self.certs_dir / "ca.crt"))
        try:
            with urllib.request.urlopen(self.webhook_url + path, context=context, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def wait_webhook_called(self, timeout: float) -> None:
        """Wait until the API server really calls our mutating webhook.

        A server-side dry-run create of a ServiceAccount in ``default`` comes back with our
        annotation only once the configuration is registered and the API server uses it.
        """
        process = self.webhook
        assert process is not None
        manifest = json.dumps(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "probe"}}
        )

        def called() -> bool:
            if not process.running():
                raise RuntimeError("webhook exited:\n" + process.log_tail())
            out = self.kubectl(
                "create",
                "--dry-run=server",
                "-o",
                "json",
                "-n",
                "default",
                "-f",
                "-",
                input=manifest,
            )
            annotations = json.loads(out)["metadata"].get("annotations") or {}
            return "image.alauda.io/internal-registry-pull-secret-ref" in annotations

        try:
            wait_for(called, timeout=timeout, what="the API server to call the webhook")
        except Exception:
            log.error("webhook log:\n%s", process.log_tail())
            raise

    def stop(self) -> None:
        self.stop_controller()
        self.stop_webhook()
        self.cp.stop()
