"""The install manifests, checked by the real API server (server-side dry-run): what a
platform team applies must be accepted as written. No Pod runs here, so this shows the
objects are valid, not that a CNI enforces the NetworkPolicy."""

from __future__ import annotations

import yaml

from localcluster.binaries import REPO_ROOT
from tests.integration.support import ClusterEnv

DEPLOY = REPO_ROOT / "manifests" / "deploy"


def test_the_deploy_manifests_are_accepted_by_the_api_server(cluster: ClusterEnv) -> None:
    """The local stack registers its webhooks by URL under the same name; the manifests'
    copies (by Service) are checked under another name, so no merge with them is judged."""
    documents = [
        document
        for path in sorted(DEPLOY.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]
    for document in documents:
        if document["kind"].endswith("WebhookConfiguration"):
            document["metadata"]["name"] += "-manifest-check"
    manifest = yaml.safe_dump_all(documents)
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest)
    created = result.stdout
    for kind_and_name in (
        "networkpolicy.networking.k8s.io/image-registry-webhook",
        "deployment.apps/image-registry-webhook",
        "poddisruptionbudget.policy/image-registry-webhook",
        "clusterrole.rbac.authorization.k8s.io/registry-v2:image-registry-webhook",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/"
        "image-registry-webhook-manifest-check",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/"
        "image-registry-webhook-manifest-check",
    ):
        assert kind_and_name in created, created


def test_the_network_policy_admits_only_the_webhook_port(cluster: ClusterEnv) -> None:
    policy = cluster.kubectl_json(
        "create", "--dry-run=server", "-f", str(DEPLOY / "25-networkpolicy.yaml")
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "image-registry-webhook"}
    }
    ports = [port for rule in policy["spec"]["ingress"] for port in rule["ports"]]
    assert ports == [{"protocol": "TCP", "port": 8443}]
