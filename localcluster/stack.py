"""The whole local stack: control plane, CRDs, and our webhook server and controller.

``make dev`` and the pytest fixtures both start exactly this, so what developers run is
what the tests prove. As in a cluster, the controller's certificate manager keeps the
webhook's certificates in the Secret ``image-registry-webhook-tls`` and the caBundle; the
stack plays the kubelet and mirrors the Secret into the server's certificate directory
(``secretvolume``). Without a controller the server makes development certificates.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import requests
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from cli.options import never_touched_namespaces
from controller.certificates.material import MOUNTED_KEYS, SECRET_NAME
from kube import certs
from localcluster import kubeconfig
from localcluster.binaries import REPO_ROOT
from localcluster.cluster import ControlPlane
from localcluster.frontdoor import FRONTDOOR_ACCOUNT, LocalFrontDoor
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.secretvolume import SecretVolume
from localcluster.supervisor import Supervisor
from localcluster.waiting import wait_for
from serving import devcerts
from webhook import exemption, registration

log = logging.getLogger(__name__)

CRD_DIR = REPO_ROOT / "manifests" / "crds"
"""A kustomization (``kubectl apply -k``), as the standalone overlay includes it."""
RBAC_MANIFEST = REPO_ROOT / "manifests" / "base" / "rbac.yaml"
PRUNER_MANIFEST = REPO_ROOT / "manifests" / "base" / "image-pruner.yaml"
"""The pruner's ServiceAccount and role, and the controller's rights to render its CronJob."""
PRUNER_IMAGE = "localhost/registry-v2/policy:dev"
"""What the local controller's image-pruner CronJob runs (``--pruner-image``): a name, as
no image of this tree is built for the stack; a run on ``make dev``'s node fails to pull
it, and the ImagePruner's status says so."""
NODE_CA_MANIFEST = REPO_ROOT / "manifests" / "components" / "node-ca" / "namespace.yaml"
"""node-ca's namespace and the controller's Role there (image-registry-certificates)."""
NODE_CA_NAMESPACE = "image-registry-node-ca"
SERVICE_NAMESPACE = "image-registry-system"
CONFIGURATION_NAME = "image-registry-webhook"
SERVER_ACCOUNT = "image-registry-webhook"
CONTROLLER_ACCOUNT = "image-registry-controller"
"""The ServiceAccounts of ``RBAC_MANIFEST`` the webhook server and the controller run as."""
TOKEN_DURATION = "24h"
"""Long enough for any test session; ``make dev`` runs as admin and needs no token."""
SECRET_SYNC_SECONDS = 0.5
"""How often the stack copies the certificate Secret to the server's files (the kubelet's
role; it takes up to a minute in a cluster)."""
CERTIFICATE_PROPAGATION_SECONDS = 3.0
"""The controller's ``--certificate-propagation-seconds`` here: the API server is local and
the files follow the Secret within ``SECRET_SYNC_SECONDS``, so a CA rotation takes seconds
instead of the minutes a cluster's kubelets need."""
WEBHOOK_REPLICAS = 2
CONTROLLER_REPLICAS = 2
"""As many replicas as the manifests' Deployments run (``manifests/base``): the webhook's
share one port (SO_REUSEPORT: two pods behind a Service), the controller's one Lease."""
CRASH_LOOP_RESTARTS = 3
"""Restarts of one replica during start-up after which the stack gives up on it."""
LEADER_GAUGE = "registry_v2_policy_leader_election_status"
PROBE_SECONDS = 5.0
"""A loopback HTTP request to a replica's metrics port."""


def replica_names(base: str, count: int) -> list[str]:
    """``base`` for the first (its log keeps the name ``<base>.log``), then ``base-2``..."""
    return [base, *(f"{base}-{i}" for i in range(2, count + 1))]


def leader_status(process: ManagedProcess) -> float | None:
    """The replica's leader gauge (1 leads, 0 follows); None before it exports one."""
    page = requests.get(
        f"http://127.0.0.1:{process.ports['metrics']}/metrics", timeout=PROBE_SECONDS
    ).text
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == LEADER_GAUGE:
                return sample.value
    return None


class Stack:
    """Control plane plus our processes; :meth:`stop` stops everything it started."""

    def __init__(
        self,
        control_plane: ControlPlane,
        *,
        with_controller: bool = True,
        controller_args: list[str] | None = None,
        webhook_args: list[str] | None = None,
        as_service_accounts: bool = False,
        managed_certificates: bool | None = None,
        webhook_replicas: int = WEBHOOK_REPLICAS,
        controller_replicas: int = CONTROLLER_REPLICAS,
        with_frontdoor: bool = False,
        frontdoor_args: list[str] | None = None,
    ) -> None:
        """``as_service_accounts``: run the server and the controller with tokens of their
        ServiceAccounts under the manifests' RBAC, as in a cluster; else with the admin's
        credentials (``make dev``). ``managed_certificates`` (default: with a controller):
        the controller's certificate manager issues the server's certificates and the
        stack registers the webhooks without a caBundle, as the manifests do; otherwise
        the server makes development certificates and registers itself (or, with
        ``as_service_accounts``, the stack registers them with that CA). Every replica
        that exits is started again (``supervisor``), unless stopped on purpose.
        ``with_frontdoor``: also a real registry and our front door before it, started
        last (the front door creates ImageStreams through our webhooks)."""
        self.cp = control_plane
        self.with_controller = with_controller
        self.controller_args = list(controller_args or [])
        self.webhook_args = list(webhook_args or [])
        self.as_service_accounts = as_service_accounts
        self.managed_certificates = (
            with_controller if managed_certificates is None else managed_certificates
        )
        self.certificates: SecretVolume | None = None
        self._secret_reader: client.ApiClient | None = None
        self.supervisor = Supervisor()
        self.webhook_names = replica_names("webhook", webhook_replicas)
        self.controller_names = replica_names("controller", controller_replicas)
        self._ports: dict[str, dict[str, int]] = {}
        """Each replica's metrics (and probe) ports, kept across its restarts."""
        self.webhook_port = 0
        self.certs_dir = self.cp.data_dir / "webhook-certs"
        self.namespace = SERVICE_NAMESPACE
        self.with_frontdoor = with_frontdoor
        self.frontdoor_args = list(frontdoor_args or [])
        self.frontdoor: LocalFrontDoor | None = None

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

    def _processes(self, names: list[str]) -> list[ManagedProcess]:
        found = (self.supervisor.process(name) for name in names)
        return [process for process in found if process is not None]

    @property
    def webhooks(self) -> list[ManagedProcess]:
        """The webhook server replicas' current processes (none once stopped)."""
        return self._processes(self.webhook_names)

    @property
    def webhook(self) -> ManagedProcess | None:
        """The first webhook server replica's current process."""
        return self.supervisor.process(self.webhook_names[0])

    @property
    def controllers(self) -> list[ManagedProcess]:
        """The controller replicas' current processes (none once stopped)."""
        return self._processes(self.controller_names)

    def controller_leader(self) -> ManagedProcess | None:
        """The controller replica whose leader gauge is 1, if one is."""
        for process in self.controllers:
            try:
                if process.running() and leader_status(process) == 1:
                    return process
            except requests.RequestException:
                continue
        return None

    @property
    def controller(self) -> ManagedProcess | None:
        """The leading controller replica, else the first one; None once stopped."""
        replicas = self.controllers
        return self.controller_leader() or (replicas[0] if replicas else None)

    @property
    def webhook_metrics_urls(self) -> list[str]:
        """The plain-HTTP /metrics of every running webhook server process."""
        return [f"http://127.0.0.1:{p.ports['metrics']}/metrics" for p in self.webhooks]

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

    def start(self, timeout: float = 120.0, *, prepare: Callable[[], None] | None = None) -> None:
        """``prepare`` runs once the control plane and CRDs are up, before any of our
        processes (a benchmark fills the cluster there, without our webhooks in the way)."""
        try:
            self.supervisor.start()
            self.cp.start()
            self.install_crds(timeout)
            self.kubectl("create", "namespace", SERVICE_NAMESPACE)
            self.kubectl("apply", "-f", str(NODE_CA_MANIFEST))
            if prepare is not None:
                prepare()
            self._install_exemption_guard()
            if self.with_frontdoor:
                # Its registry's address and CA exist from here: the controller, started
                # before the registry runs, is told them (its tag reconciler retries).
                self.frontdoor = LocalFrontDoor(self, self.frontdoor_args)
            if self.as_service_accounts:
                self._install_rbac()
            if self.managed_certificates:
                self._register_webhooks(ca_bundle=b"")
                self.start_controller()
                self._mount_certificates(timeout)
                self.start_webhook(timeout)
            else:
                if self.as_service_accounts:
                    files = devcerts.ensure(
                        self.certs_dir, certs.serving_hosts(SERVER_ACCOUNT, SERVICE_NAMESPACE)
                    )
                    self._register_webhooks(ca_bundle=files.ca_file.read_bytes())
                self.start_webhook(timeout)
                if self.with_controller:
                    self.start_controller()
            if self.frontdoor is not None:
                self.frontdoor.start(timeout)
        except BaseException:
            self.stop()
            raise

    def install_crds(self, timeout: float) -> None:
        names = self.kubectl("apply", "-k", str(CRD_DIR), "-o", "name").split()
        self.kubectl("wait", "--for=condition=Established", f"--timeout={int(timeout)}s", *names)

    def process_kubeconfig(self, account: str) -> Path:
        """The kubeconfig a process runs with: its ServiceAccount's, or the admin's."""
        if not self.as_service_accounts:
            return self.kubeconfig
        return self.cp.data_dir / f"{account}.kubeconfig"

    def _install_rbac(self) -> None:
        self.kubectl("apply", "-f", str(RBAC_MANIFEST))
        self.kubectl("apply", "-f", str(PRUNER_MANIFEST))
        for account in (SERVER_ACCOUNT, CONTROLLER_ACCOUNT, FRONTDOOR_ACCOUNT):
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

    def admin_api(self) -> client.ApiClient:
        """An API client with the admin's credentials; close it after use."""
        configuration = client.Configuration()
        config.load_kube_config(str(self.kubeconfig), client_configuration=configuration)
        return client.ApiClient(configuration)

    def _register_webhooks(self, ca_bundle: bytes) -> None:
        """What the manifests do in a cluster: the serving process has no right to. An empty
        ``ca_bundle`` leaves it to the certificate manager."""
        self.webhook_port = self.webhook_port or free_port()
        mutating, validating = registration.desired_configurations(
            name=CONFIGURATION_NAME,
            ca_bundle=ca_bundle,
            excluded_namespaces=list(never_touched_namespaces(SERVICE_NAMESPACE, [])),
            url=self.webhook_url,
        )
        with self.admin_api() as api:
            registration.register(api, mutating, validating)

    def _install_exemption_guard(self) -> None:
        """What the manifests do in a cluster (``manifests/base/exemption-guard.yaml``):
        only a holder of the exempter role may label a namespace exempt, whichever process
        registers the webhook configurations that honour the label."""
        with self.admin_api() as api:
            exemption.install(api)

    def _read_certificate_secret(self) -> Mapping[str, bytes] | None:
        if self._secret_reader is None:
            self._secret_reader = self.admin_api()
        try:
            secret = client.CoreV1Api(self._secret_reader).read_namespaced_secret(
                SECRET_NAME, SERVICE_NAMESPACE, _request_timeout=10
            )
        except client.ApiException as err:
            if err.status == 404:
                return None
            raise
        return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}

    def _mount_certificates(self, timeout: float) -> None:
        """Play the kubelet: the Secret's served keys, mirrored into ``certs_dir``."""
        self.certificates = SecretVolume(
            self._read_certificate_secret,
            self.certs_dir,
            MOUNTED_KEYS,
            interval=SECRET_SYNC_SECONDS,
        ).start()

        def mounted() -> bool:
            self._check_not_crash_looping(self.controller_names)
            return self.certificates is not None and self.certificates.ready()

        wait_for(mounted, timeout=timeout, what=f"the controller to write Secret {SECRET_NAME}")

    def _check_not_crash_looping(self, names: list[str]) -> None:
        for name in names:
            process = self.supervisor.process(name)
            if process is not None and self.supervisor.restarts(name) >= CRASH_LOOP_RESTARTS:
                raise RuntimeError(f"{name} keeps exiting:\n{process.log_tail()}")

    def _replica_ports(self, name: str, *uses: str) -> dict[str, int]:
        """Free loopback ports for a replica, the same ones again when it restarts."""
        return self._ports.setdefault(name, {use: free_port() for use in uses})

    def process_env(self) -> dict[str, str]:
        """The environment of every process the stack starts."""
        return self._env()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def _serving_args(self) -> list[str]:
        if self.managed_certificates:  # the files of the mirrored Secret, as in a pod
            return [
                f"--tls-cert-file={self.certs_dir / 'tls.crt'}",
                f"--tls-private-key-file={self.certs_dir / 'tls.key'}",
                f"--ca-file={self.certs_dir / 'ca.crt'}",
            ]
        register = [] if self.as_service_accounts else ["--register"]
        return [f"--dev-certs-dir={self.certs_dir}", *register]

    def start_webhook(self, timeout: float = 60.0) -> None:
        """Start every webhook server replica, one after the other (the first may make
        the development certificates the others read), each serving before the next."""
        self.webhook_port = self.webhook_port or free_port()
        first, *others = self.webhook_names
        self.supervisor.run(first, lambda: self._spawn_webhook(first))
        self.wait_webhook_called(timeout)
        for name in others:
            process = self.supervisor.run(name, functools.partial(self._spawn_webhook, name))
            self._wait_metrics(name, process, timeout)

    def _spawn_webhook(self, name: str) -> ManagedProcess:
        # A metrics port of its own, so that several stacks (and replicas) never collide;
        # the serving port is shared (SO_REUSEPORT), as the pods behind one Service.
        ports = self._replica_ports(name, "metrics")
        return ManagedProcess(
            name,
            [
                sys.executable,
                "-m",
                "cli",
                "serve",
                f"--bind=127.0.0.1:{self.webhook_port}",
                f"--metrics-bind-address=127.0.0.1:{ports['metrics']}",
                *self._serving_args(),
                f"--client-ca-file={self.client_ca_file}",
                f"--webhook-url={self.webhook_url}",
                f"--kubeconfig={self.process_kubeconfig(SERVER_ACCOUNT)}",
                f"--namespace={SERVICE_NAMESPACE}",
                f"--configuration-name={CONFIGURATION_NAME}",
                *self.webhook_args,
            ],
            self.cp.log_dir,
            env=self._env(),
            cwd=REPO_ROOT,
            ports=ports,
        )

    def _wait_metrics(self, name: str, process: ManagedProcess, timeout: float) -> None:
        """Until the replica's master serves its workers' metrics: it listens, and its
        workers take connections as soon as their caches have synced."""

        def serving() -> bool:
            self._check_not_crash_looping([name])
            url = f"http://127.0.0.1:{process.ports['metrics']}/metrics"
            return requests.get(url, timeout=PROBE_SECONDS).status_code == 200

        wait_for(serving, timeout=timeout, what=f"{name} to serve its metrics")

    def stop_webhook(self) -> None:
        """Stop every webhook server replica; they stay down until :meth:`start_webhook`."""
        self.supervisor.stop(*self.webhook_names)

    def start_controller(self) -> None:
        """Start every controller replica; they compete for the Lease."""
        for name in self.controller_names:
            self.supervisor.run(name, functools.partial(self.spawn_controller, name))

    def spawn_controller(self, name: str) -> ManagedProcess:
        """A controller process; more than one compete for the leader Lease. Each gets
        free loopback ports for metrics and probes (``ManagedProcess.ports``), the same
        for each start under one name. Unsupervised unless started by :meth:`start_controller`."""
        ports = self._replica_ports(name, "metrics", "health")
        return ManagedProcess(
            name,
            [
                sys.executable,
                "-m",
                "cli",
                "controller",
                f"--kubeconfig={self.process_kubeconfig(CONTROLLER_ACCOUNT)}",
                f"--namespace={SERVICE_NAMESPACE}",
                f"--metrics-bind-address=127.0.0.1:{ports['metrics']}",
                f"--health-probe-bind-address=127.0.0.1:{ports['health']}",
                f"--node-ca-namespace={NODE_CA_NAMESPACE}",
                f"--pruner-image={PRUNER_IMAGE}",
                *(
                    [f"--certificate-propagation-seconds={CERTIFICATE_PROPAGATION_SECONDS}"]
                    if self.managed_certificates
                    else ["--manage-certificates=false"]
                ),
                *self._upstream_args(),
                *self.controller_args,
            ],
            self.cp.log_dir,
            env=self._env(),
            cwd=REPO_ROOT,
            ports=ports,
        )

    def _upstream_args(self) -> list[str]:
        """The registry behind the front door, for the controller's tag reconciler."""
        if self.frontdoor is None:
            return []
        registry = self.frontdoor.registry
        return [f"--upstream-registry={registry.url}", f"--upstream-ca-file={registry.ca_file}"]

    def stop_controller(self) -> None:
        """Stop every controller replica; they stay down until :meth:`start_controller`."""
        self.supervisor.stop(*self.controller_names)

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
        self.supervisor.close()
        if self.certificates is not None:
            self.certificates.stop()
            self.certificates = None
        if self._secret_reader is not None:
            self._secret_reader.close()
            self._secret_reader = None
        self.cp.stop()
