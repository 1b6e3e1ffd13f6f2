"""The front door's Secret and the node-trust ConfigMap, as the tests write and read them."""

from __future__ import annotations

import base64
import json
from typing import Any

from kube.certs import issue, new_ca
from localcluster.stack import NODE_CA_NAMESPACE, SERVICE_NAMESPACE
from quota.registrycerts import CA_KEY, CONFIGMAP_NAME, FRONTDOOR_TLS_SECRET
from tests.integration.support.cluster import ClusterEnv


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def frontdoor_secret(*, with_ca: bool = True) -> tuple[dict[str, Any], str]:
    """The Secret ``image-registry-frontdoor-tls`` as cert-manager writes it (a serving
    certificate signed by a new CA, and that CA in ``ca.crt``), and the CA's PEM."""
    ca = new_ca("front door test CA")
    serving = issue(ca, "image-registry", hosts=["image-registry.image-registry-system.svc"])
    data = {"tls.crt": _b64(serving.cert_pem), "tls.key": _b64(serving.key_pem)}
    if with_ca:
        data[CA_KEY] = _b64(ca.cert_pem)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": FRONTDOOR_TLS_SECRET, "namespace": SERVICE_NAMESPACE},
        "type": "kubernetes.io/tls",
        "data": data,
    }
    return secret, ca.cert_pem.decode("ascii")


def node_trust(cluster: ClusterEnv) -> dict[str, str] | None:
    """``data`` of ``image-registry-certificates``; None when it does not exist."""
    result = cluster.kubectl(
        "get", "configmap", CONFIGMAP_NAME, "-n", NODE_CA_NAMESPACE, "-o", "json", check=False
    )
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    data: dict[str, str] = json.loads(result.stdout).get("data") or {}
    return data
