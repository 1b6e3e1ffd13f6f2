"""Certificates and keys of the local control plane, written once per data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kube import certs
from localcluster import network

APISERVER_HOSTS = [
    "127.0.0.1",
    "localhost",
    network.GATEWAY,
    network.KUBERNETES_SERVICE_IP,
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]
NODE_NAME = "registry-v2-node"
"""The local node's name (kubelet ``--hostname-override``): its certificate's user is
``system:node:<NODE_NAME>``."""


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def apiserver_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.directory / "sa.pub"

    def client(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.crt", self.directory / f"{name}.key"

    @property
    def webhook_client_ca_cert(self) -> Path:
        """A CA of its own for the API server's webhook client certificate, so that no
        other certificate of the cluster CA (admin, controller-manager) can pass as the
        API server at our admission port."""
        return self.directory / "webhook-client-ca.crt"

    @property
    def webhook_client(self) -> tuple[Path, Path]:
        return self.client("webhook-client")

    @property
    def kubelet_serving(self) -> tuple[Path, Path]:
        """The kubelet's serving pair, for its InternalIP: the API server verifies it
        (``--kubelet-certificate-authority``) before it proxies logs or exec."""
        return self.client("kubelet-serving")


def create(directory: Path) -> Pki:
    """A CA, the API server's serving pair, service-account keys and client certificates."""
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = certs.new_ca("registry-v2-local-ca")
    pki.ca_cert.write_bytes(ca.cert_pem)
    certs.issue(ca, "kube-apiserver", hosts=APISERVER_HOSTS).write(
        pki.apiserver_cert, pki.apiserver_key
    )
    private, public = certs.new_signing_key()
    pki.sa_key.write_bytes(private)
    pki.sa_key.chmod(0o600)
    pki.sa_pub.write_bytes(public)
    clients = {
        "admin": ("registry-v2-admin", ["system:masters"]),
        "controller-manager": ("system:kube-controller-manager", []),
        # The node's parts, as kubeadm names them: the Node authorizer and NodeRestriction
        # know the kubelet by this user and group; the bootstrap roles bind the others.
        "kubelet": (f"system:node:{NODE_NAME}", ["system:nodes"]),
        "kube-scheduler": ("system:kube-scheduler", []),
        "kube-proxy": ("system:kube-proxy", []),
        "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ["system:masters"]),
    }
    for file_name, (common_name, groups) in clients.items():
        pair = certs.issue(ca, common_name, organizations=groups, server=False, client=True)
        pair.write(*pki.client(file_name))
    certs.issue(ca, f"system:node:{NODE_NAME}", hosts=[network.GATEWAY]).write(*pki.kubelet_serving)
    webhook_client_ca = certs.new_ca("registry-v2-local-webhook-client-ca")
    pki.webhook_client_ca_cert.write_bytes(webhook_client_ca.cert_pem)
    pair = certs.issue(
        webhook_client_ca, "kube-apiserver-webhook-client", server=False, client=True
    )
    pair.write(*pki.webhook_client)
    return pki
