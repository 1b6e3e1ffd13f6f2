"""Managed pull secrets as tests read them: the Secret, its docker config and token, and
the API server's verdict on that token."""

from __future__ import annotations

import base64
import json
from typing import Any

from kubernetes import client

from tests.integration.support.cluster import ClusterEnv

REF = "image.alauda.io/internal-registry-pull-secret-ref"
"""Set by our mutating webhook on a ServiceAccount: its managed Secret's name."""
MANAGED = "image.alauda.io/managed-by=registry-v2-policy"
"""The label selector of the Secrets the service manages."""
REGISTRY_AUDIENCE = "image-registry.alauda.io"
"""The registry audience (``--token-audiences``' default): pull secrets' tokens carry it."""
INTERNAL = {
    "image-registry.image-registry-system.svc:5000",
    "image-registry.image-registry-system.svc.cluster.local:5000",
}
"""The internal registry Service's hostnames, in every managed Secret."""


def read(cluster: ClusterEnv, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def docker_config(secret: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    return config


def valid_secret(cluster: ClusterEnv, namespace: str, sa: str) -> dict[str, Any] | None:
    """The managed Secret once it carries a token, else None."""
    secret = read(cluster, "secret", f"{sa}-dockercfg", namespace)
    if secret is None or secret.get("type") != "kubernetes.io/dockerconfigjson":
        return None
    auths = docker_config(secret).get("auths") or {}
    return secret if auths else None


def wait_secret(
    cluster: ClusterEnv, namespace: str, sa: str, timeout: float = 30
) -> dict[str, Any]:
    secret: dict[str, Any] = cluster.wait(
        lambda: valid_secret(cluster, namespace, sa),
        timeout=timeout,
        what=f"managed secret of {namespace}/{sa}",
    )
    return secret


def hostnames(cluster: ClusterEnv, namespace: str, sa: str) -> set[str]:
    secret = valid_secret(cluster, namespace, sa)
    return set(docker_config(secret)["auths"]) if secret else set()


def pull_secret_names(cluster: ClusterEnv, namespace: str, sa: str) -> list[str]:
    obj = read(cluster, "serviceaccount", sa, namespace) or {}
    return [entry.get("name") for entry in obj.get("imagePullSecrets") or []]


def token_of(secret: dict[str, Any]) -> str:
    tokens: set[str] = {entry["password"] for entry in docker_config(secret)["auths"].values()}
    assert len(tokens) == 1
    return tokens.pop()


def token_review(
    cluster: ClusterEnv, token: str, audiences: list[str] | None = None
) -> dict[str, Any]:
    """The API server's verdict on ``token``, as the registry asks for it (its audience),
    or with ``audiences=[]`` as a client of the API server itself would be judged."""
    spec: dict[str, Any] = {"token": token}
    spec["audiences"] = [REGISTRY_AUDIENCE] if audiences is None else audiences
    review = client.AuthenticationV1Api(cluster.api).create_token_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
        _preload_content=False,
    )
    status: dict[str, Any] = json.loads(review.data)["status"]
    return status


def managed_secrets(cluster: ClusterEnv, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.kubectl_json(
        "get", "secrets", "-n", namespace, "-l", MANAGED
    )["items"]
    return items


def every_account_has_its_one_secret(cluster: ClusterEnv, namespace: str) -> bool:
    """Every ServiceAccount of the namespace has exactly its one managed Secret (a
    duplicate fails at once: no wait can mend it)."""
    accounts = {
        sa["metadata"]["name"]
        for sa in cluster.kubectl_json("get", "serviceaccounts", "-n", namespace)["items"]
    }
    secrets = [s["metadata"]["name"] for s in managed_secrets(cluster, namespace)]
    assert len(secrets) == len(set(secrets)), f"duplicate Secrets: {sorted(secrets)}"
    return sorted(secrets) == sorted(f"{sa}-dockercfg" for sa in accounts)


def name_taken_events(cluster: ClusterEnv, namespace: str, sa: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = cluster.kubectl_json("get", "events", "-n", namespace)["items"]
    return [
        e
        for e in events
        if e["reason"] == "PullSecretNameTaken" and e["involvedObject"]["name"] == sa
    ]
