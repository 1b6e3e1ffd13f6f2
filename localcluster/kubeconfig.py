"""Kubeconfig files with embedded credentials."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def write(
    path: Path, *, server: str, ca_cert: Path, client_cert: Path, client_key: Path, user: str
) -> None:
    _write_config(
        path,
        server=server,
        ca_cert=ca_cert,
        user=user,
        credentials={
            "client-certificate-data": _b64(client_cert),
            "client-key-data": _b64(client_key),
        },
    )


def write_token(path: Path, *, server: str, ca_cert: Path, token: str, user: str) -> None:
    """A kubeconfig that acts as whoever ``token`` belongs to (a ServiceAccount)."""
    _write_config(path, server=server, ca_cert=ca_cert, user=user, credentials={"token": token})


def _write_config(
    path: Path, *, server: str, ca_cert: Path, user: str, credentials: dict[str, str]
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "registry-v2-local",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {"name": "registry-v2-local", "context": {"cluster": "registry-v2-local", "user": user}}
        ],
        "current-context": "registry-v2-local",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)


def write_webhook_admission(directory: Path, *, client_cert: Path, client_key: Path) -> Path:
    """kube-apiserver's AdmissionConfiguration: both webhook plugins present ``client_cert``
    to every webhook (user ``*``), as a cluster operator sets up for a webhook that
    authenticates its caller. Returns the file for ``--admission-control-config-file``."""
    credentials = directory / "webhook-client.kubeconfig"
    client_config = {
        "apiVersion": "v1",
        "kind": "Config",
        "users": [
            {
                "name": "*",
                "user": {
                    "client-certificate-data": _b64(client_cert),
                    "client-key-data": _b64(client_key),
                },
            }
        ],
    }
    plugin_config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(credentials),
    }
    admission = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {"name": name, "configuration": plugin_config}
            for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")
        ],
    }
    directory.mkdir(parents=True, exist_ok=True)
    for path, content in ((credentials, client_config), (directory / "admission.yaml", admission)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(content, f, sort_keys=False)
    return directory / "admission.yaml"
