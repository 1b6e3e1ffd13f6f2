"""Nodes trust the registry: the controller keeps ``image-registry-certificates`` (in
node-ca's namespace) to the front door's ``ca.crt`` under every hostname a pull secret
names, against the real API server (the controller runs as its ServiceAccount under the
manifests' RBAC: base/rbac.yaml and components/node-ca/namespace.yaml)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from localcluster.stack import NODE_CA_NAMESPACE, SERVICE_NAMESPACE
from quota.registrycerts import FRONTDOOR_TLS_SECRET
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.registrycerts import frontdoor_secret, node_trust

INTERNAL_KEYS = {
    "image-registry.image-registry-system.svc..5000",
    "image-registry.image-registry-system.svc.cluster.local..5000",
}
"""The internal Service's two hostnames, ``:`` written ``..`` as OpenShift does."""


@pytest.fixture
def clean(cluster: ClusterEnv) -> Iterator[None]:
    yield
    cluster.kubectl("delete", "config.imageregistry.operator.alauda.io", "cluster", check=False)
    cluster.kubectl("delete", "secret", FRONTDOOR_TLS_SECRET, "-n", SERVICE_NAMESPACE, check=False)


def test_the_front_doors_ca_reaches_the_configmap_through_rotation_and_routes(
    cluster: ClusterEnv, clean: None
) -> None:
    without_ca, _ = frontdoor_secret(with_ca=False)
    cluster.apply(without_ca)
    cluster.wait(
        lambda: any(
            e["reason"] == "RegistryCANotPublished"
            for e in cluster.kubectl_json("get", "events", "-n", SERVICE_NAMESPACE)["items"]
        ),
        timeout=CACHE_DEADLINE,
        what="the Event saying why no CA is published",
    )
    assert not node_trust(cluster)

    secret, ca = frontdoor_secret()
    cluster.apply(secret)
    cluster.wait(
        lambda: node_trust(cluster) == dict.fromkeys(INTERNAL_KEYS, ca),
        timeout=CACHE_DEADLINE,
        what="the CA under every internal hostname",
    )

    rotated, new_ca = frontdoor_secret()
    cluster.apply(rotated)
    cluster.wait(
        lambda: node_trust(cluster) == dict.fromkeys(INTERNAL_KEYS, new_ca),
        timeout=CACHE_DEADLINE,
        what="the rotated CA",
    )

    host = f"registry-{uuid.uuid4().hex[:6]}.example.com"
    route = {
        "apiVersion": "imageregistry.operator.alauda.io/v1",
        "kind": "Config",
        "metadata": {"name": "cluster"},
        "spec": {"routes": [{"name": "public", "hostname": f"{host}:8443"}]},
    }
    cluster.apply(route)
    cluster.wait(
        lambda: node_trust(cluster) == dict.fromkeys({*INTERNAL_KEYS, f"{host}..8443"}, new_ca),
        timeout=CACHE_DEADLINE,
        what="the route's key",
    )

    cluster.kubectl("delete", "secret", FRONTDOOR_TLS_SECRET, "-n", SERVICE_NAMESPACE)
    cluster.wait(
        lambda: node_trust(cluster) == {},
        timeout=CACHE_DEADLINE,
        what="the ConfigMap emptied when the CA goes",
    )


def test_a_hand_edit_is_set_right(cluster: ClusterEnv, clean: None) -> None:
    secret, ca = frontdoor_secret()
    cluster.apply(secret)
    cluster.wait(
        lambda: node_trust(cluster) == dict.fromkeys(INTERNAL_KEYS, ca),
        timeout=CACHE_DEADLINE,
        what="the CA published",
    )
    cluster.kubectl(
        "patch", "configmap", "image-registry-certificates", "-n", NODE_CA_NAMESPACE,
        "--type=merge", "-p", '{"data": {"evil.example": "x"}}',
    )  # fmt: skip
    cluster.wait(
        lambda: node_trust(cluster) == dict.fromkeys(INTERNAL_KEYS, ca),
        timeout=CACHE_DEADLINE,
        what="the edit undone",
    )
