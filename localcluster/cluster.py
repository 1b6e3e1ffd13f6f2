"""Start and stop etcd, kube-apiserver and kube-controller-manager on loopback."""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from kube import certs
from localcluster import kubeconfig, network, pki
from localcluster.binaries import binaries_dir
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.waiting import Timeout, wait_for

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDITED_NAMESPACE = "image-registry-system"
"""Requests of the ServiceAccounts in this namespace (ours) are written to the audit log,
so a test can compare what our processes did with what their RBAC grants."""
CONTROLLERS = [
    "serviceaccount-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "resourcequota-controller",
    "root-ca-certificate-publisher-controller",
    # The image-pruner CronJob's status (its Jobs, last schedule and success) is what the
    # ImagePruner reports. Without a node the job controller does not run either, so a
    # scheduled Job makes no Pod: a test writes the Job's outcome itself.
    "cronjob-controller",
]
NODE_CONTROLLERS = [
    # The not-ready taint of a new node stays until this controller removes it.
    "node-lifecycle-controller",
    "deployment-controller",
    "replicaset-controller",
    "daemonset-controller",
    "statefulset-controller",
    "job-controller",
    "ttl-after-finished-controller",
    "disruption-controller",
    "pod-garbage-collector-controller",
    # The API server reaches a webhook's Service through its endpoints; kube-proxy reads
    # EndpointSlices.
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
]
"""What a cluster with a node needs beyond ``CONTROLLERS``: the workload controllers."""


class ControlPlaneError(RuntimeError):
    """A component did not start; the message carries the tail of its log."""


def spawn(
    processes: list[ManagedProcess], name: str, argv: list[str], log_dir: Path
) -> ManagedProcess:
    """Start a component, add it to ``processes`` (stopped in reverse order) and say so."""
    process = ManagedProcess(name, argv, log_dir)
    processes.append(process)
    log.info("started %s (pid %d), log %s", name, process.pid, process.log_path)
    return process


def raise_if_exited(processes: list[ManagedProcess]) -> None:
    for process in processes:
        if not process.running():
            raise ControlPlaneError(
                f"{process.name} exited with {process.popen.returncode}:\n" + process.log_tail()
            )


def wait_started(
    process: ManagedProcess, check: Callable[[], object], timeout: float, what: str
) -> None:
    """Until ``check()``; a process that exits fails at once, with its log's tail."""
    try:
        wait_for(lambda: not process.running() or check(), timeout=timeout, what=what)
    except Timeout as err:
        raise ControlPlaneError(f"{err}\n{process.name} log:\n{process.log_tail()}") from None
    raise_if_exited([process])


class ControlPlane:
    """A real control plane in ``data_dir`` (a fresh temporary one by default).

    Use as a context manager, or call :meth:`start` and :meth:`stop`; ``stop`` is safe to
    call more than once and from signal handlers' cleanup paths.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        kubeconfig_path: Path | None = None,
        bin_dir: Path | None = None,
        keep_data: bool = False,
        quota_sync_seconds: int = 15,
        for_node: bool = False,
    ) -> None:
        self._own_data_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="registry-v2-cp-"))
        self.kubeconfig = kubeconfig_path or self.data_dir / "kubeconfig"
        self._bin_dir = bin_dir
        self._keep_data = keep_data
        self._quota_sync_seconds = quota_sync_seconds
        self.for_node = for_node
        """Ready for a node (``localcluster.node``): the API server listens on the node
        bridge's address, which must exist first, so that pods reach it; it authorizes
        kubelets with the Node authorizer and runs the workload controllers."""
        self.processes: list[ManagedProcess] = []
        self.server = ""
        self.pki: pki.Pki | None = None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = binaries_dir()
        return self._bin_dir

    def kubectl(self) -> Path:
        return self.bin_dir / "kubectl"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        bins = self.bin_dir
        try:
            self.pki = pki.create(self.data_dir / "pki")
            etcd_url = self._start_etcd(bins, timeout)
            self._start_apiserver(bins, etcd_url, timeout)
            self._start_controller_manager(bins)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        return spawn(self.processes, name, argv, self.log_dir)

    def _wait(
        self, process: ManagedProcess, check: Callable[[], object], timeout: float, what: str
    ) -> None:
        wait_started(process, check, timeout, what)

    def _start_etcd(self, bins: Path, timeout: float) -> str:
        client_port, peer_port = free_port(), free_port()
        client_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        process = self._spawn(
            "etcd",
            [
                str(bins / "etcd"),
                "--name=local",
                f"--data-dir={self.data_dir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=local={peer_url}",
                "--log-level=warn",
                "--quota-backend-bytes=2147483648",
                "--unsafe-no-fsync=true",
            ],
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client_url}/health", timeout=2) as response:
                return b'"health":"true"' in response.read()

        self._wait(process, healthy, timeout, "etcd /health")
        return client_url

    def _start_apiserver(self, bins: Path, etcd_url: str, timeout: float) -> None:
        assert self.pki is not None
        port = free_port()
        address = network.GATEWAY if self.for_node else "127.0.0.1"
        self.server = f"https://{address}:{port}"
        p = self.pki
        client_cert, client_key = p.webhook_client
        admission_config = kubeconfig.write_webhook_admission(
            self.data_dir / "admission", client_cert=client_cert, client_key=client_key
        )
        process = self._spawn(
            "kube-apiserver",
            [
                str(bins / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={address}",
                f"--advertise-address={address}",
                f"--secure-port={port}",
                f"--tls-cert-file={p.apiserver_cert}",
                f"--tls-private-key-file={p.apiserver_key}",
                f"--client-ca-file={p.ca_cert}",
                *self._authorization_args(),
                "--anonymous-auth=false",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={p.sa_pub}",
                f"--service-account-signing-key-file={p.sa_key}",
                f"--service-cluster-ip-range={network.SERVICE_CIDR}",
                "--allow-privileged=true",
                "--enable-admission-plugins=" + ",".join(self._admission_plugins()),
                f"--admission-control-config-file={admission_config}",
                f"--audit-policy-file={self._audit_policy()}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--profiling=false",
                f"--cert-dir={self.data_dir / 'apiserver-certs'}",
                "--v=1",
            ],
        )
        admin_cert, admin_key = p.client("admin")
        kubeconfig.write(
            self.kubeconfig,
            server=self.server,
            ca_cert=p.ca_cert,
            client_cert=admin_cert,
            client_key=admin_key,
            user="registry-v2-admin",
        )
        self._wait(process, self._apiserver_ready, timeout, "kube-apiserver /readyz")

    def _authorization_args(self) -> list[str]:
        if not self.for_node:
            return ["--authorization-mode=RBAC"]
        assert self.pki is not None
        cert, key = self.pki.client("apiserver-kubelet-client")
        return [
            # As clusters run: a kubelet may read only what its own pods use.
            "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={cert}",
            f"--kubelet-client-key={key}",
            f"--kubelet-certificate-authority={self.pki.ca_cert}",
            # The node's hostname resolves to loopback, where the API server never proxies.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ]

    def _admission_plugins(self) -> list[str]:
        plugins = [
            "NamespaceLifecycle",
            "ServiceAccount",
            "LimitRanger",
            "ResourceQuota",
            "MutatingAdmissionWebhook",
            "ValidatingAdmissionWebhook",
        ]
        return [*plugins, "NodeRestriction"] if self.for_node else plugins

    def component_kubeconfig(self, name: str, user: str) -> Path:
        """A kubeconfig for a component with the client certificate ``pki`` issued as
        ``name``."""
        assert self.pki is not None
        cert, key = self.pki.client(name)
        path = self.data_dir / f"{name}.kubeconfig"
        kubeconfig.write(
            path,
            server=self.server,
            ca_cert=self.pki.ca_cert,
            client_cert=cert,
            client_key=key,
            user=user,
        )
        return path

    def _apiserver_ready(self) -> bool:
        assert self.pki is not None
        admin_cert, admin_key = self.pki.client("admin")
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(admin_cert), str(admin_key))
        try:
            with urllib.request.urlopen(
                f"{self.server}/readyz", context=context, timeout=5
            ) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False  # not listening yet, or not ready (an HTTP error is a URLError)

    def crash_and_restart(self, names: Sequence[str], timeout: float = 120.0) -> None:
        """SIGKILL the named components at once, as a crashed node would, then start them
        again in that order with the same command line, ports and data, and wait until the
        API server is ready: the fault a test injects."""
        index = {process.name: i for i, process in enumerate(self.processes)}
        for name in names:
            self.processes[index[name]].popen.kill()
        for name in names:
            old = self.processes[index[name]]
            old.stop()  # reaps it and closes its log
            self.processes[index[name]] = ManagedProcess(name, old.argv, self.log_dir)
            log.info("restarted %s (pid %d)", name, self.processes[index[name]].pid)
        apiserver = self.processes[index["kube-apiserver"]]
        self._wait(apiserver, self._apiserver_ready, timeout, "kube-apiserver /readyz again")

    def rotate_service_account_signing_key(self, timeout: float = 120.0) -> None:
        """Sign ServiceAccount tokens with a new key from now on, as a cluster's key rotation
        does: restart kube-apiserver (same ports and data) with the new private key in
        ``--service-account-signing-key-file`` and its public key added to
        ``--service-account-key-file``, so tokens the old key signed still verify."""
        assert self.pki is not None
        index = next(i for i, p in enumerate(self.processes) if p.name == "kube-apiserver")
        old = self.processes[index]
        rotation = sum(a.startswith("--service-account-key-file=") for a in old.argv)
        key, pub = (self.pki.directory / f"sa-{rotation}.{ext}" for ext in ("key", "pub"))
        private, public = certs.new_signing_key()
        key.write_bytes(private)
        key.chmod(0o600)
        pub.write_bytes(public)
        signing = "--service-account-signing-key-file="
        argv = [a for a in old.argv if not a.startswith(signing)]
        argv += [f"{signing}{key}", f"--service-account-key-file={pub}"]
        old.stop()
        self.processes[index] = ManagedProcess(old.name, argv, self.log_dir)
        log.info("restarted %s with signing key %s", old.name, key)
        self._wait(self.processes[index], self._apiserver_ready, timeout, "kube-apiserver again")

    @property
    def audit_log(self) -> Path:
        """One JSON event per request of our ServiceAccounts (``AUDITED_NAMESPACE``)."""
        return self.data_dir / "audit" / "audit.log"

    def _audit_policy(self) -> Path:
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                {
                    "level": "Metadata",
                    "userGroups": [f"system:serviceaccounts:{AUDITED_NAMESPACE}"],
                },
                {"level": "None"},
            ],
        }
        path = self.data_dir / "audit" / "policy.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(policy))
        return path

    def _start_controller_manager(self, bins: Path) -> None:
        assert self.pki is not None
        path = self.component_kubeconfig("controller-manager", "system:kube-controller-manager")
        controllers = CONTROLLERS + (NODE_CONTROLLERS if self.for_node else [])
        self._spawn(
            "kube-controller-manager",
            [
                str(bins / "kube-controller-manager"),
                f"--kubeconfig={path}",
                f"--authentication-kubeconfig={path}",
                f"--authorization-kubeconfig={path}",
                "--secure-port=0",
                "--leader-elect=false",
                # Each controller acts as its own ServiceAccount with its bootstrap role,
                # exactly as in a real cluster (and so the quota controller's RBAC is real).
                "--use-service-account-credentials=true",
                f"--controllers={','.join(controllers)}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--resource-quota-sync-period={self._quota_sync_seconds}s",
                "--v=1",
            ],
        )

    def check_running(self) -> None:
        """Raise if any component has died: a dead apiserver must fail loudly, not time out."""
        raise_if_exited(self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self._own_data_dir and not self._keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
