"""The install manifests: the kustomize base and its overlays, rendered by kubectl's
built-in kustomize (what ``kubectl apply -k`` applies) and checked by the real API server
with a server-side dry-run, so what a platform team applies is accepted as written; then
the rendered objects are held to what they promise. No Pod runs here: this shows the
objects are valid and say the right things, not that a scheduler or a CNI honours them."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.binaries import REPO_ROOT
from tests.integration.support import ClusterEnv

MANIFESTS = REPO_ROOT / "manifests"
VARIANTS = {
    "base": MANIFESTS / "base",
    "standalone": MANIFESTS / "overlays" / "standalone",
}
"""Every kustomization a platform team applies as it is."""
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = "registry-v2/policy"
PART_OF = "registry-v2"
WORKLOADS = {
    "image-registry-webhook": "webhook",
    "image-registry-controller": "controller",
}
"""Deployment (and app.kubernetes.io/name) -> app.kubernetes.io/component."""

Document = dict[str, Any]


def render(cluster: ClusterEnv, directory: Path) -> list[Document]:
    out = cluster.kubectl("kustomize", str(directory)).stdout
    return [document for document in yaml.safe_load_all(out) if document]


@pytest.fixture(scope="module")
def rendered(cluster: ClusterEnv) -> dict[str, list[Document]]:
    return {variant: render(cluster, directory) for variant, directory in VARIANTS.items()}


def api_name(document: Document) -> str:
    """``kind.group/name``, as ``kubectl -o name`` prints it."""
    group = document["apiVersion"].rpartition("/")[0]
    kind = document["kind"].lower() + (f".{group}" if group else "")
    return f"{kind}/{document['metadata']['name']}"


def one(documents: list[Document], kind: str, name: str) -> Document:
    [document] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return document


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_is_accepted_by_the_api_server(
    cluster: ClusterEnv, rendered: dict[str, list[Document]], variant: str
) -> None:
    """The local stack registers its webhooks by URL under the same names; the manifests'
    copies (by Service) are checked under other names, so no merge with them is judged."""
    documents = copy.deepcopy(rendered[variant])
    for document in documents:
        if document["kind"].endswith("WebhookConfiguration"):
            document["metadata"]["name"] += "-manifest-check"
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-o", "name", "-f", "-",
        input=yaml.safe_dump_all(documents),
    )  # fmt: skip
    assert sorted(result.stdout.split()) == sorted(api_name(d) for d in documents)


def test_the_standalone_variant_adds_the_crds_to_the_base(
    rendered: dict[str, list[Document]],
) -> None:
    base = {api_name(d) for d in rendered["base"]}
    standalone = {api_name(d) for d in rendered["standalone"]}
    assert standalone - base == {
        f"customresourcedefinition.apiextensions.k8s.io/{path.name.removesuffix('.yaml')}"
        for path in (MANIFESTS / "crds").glob("*.*.yaml")
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_image_tag_and_the_version_label_are_the_release(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    documents = rendered[variant]
    images = {
        container["image"]
        for d in documents
        if d["kind"] == "Deployment"
        for container in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"{IMAGE}:{VERSION}"}
    for document in documents:
        assert document["metadata"]["labels"]["app.kubernetes.io/version"] == VERSION, api_name(
            document
        )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_object_carries_the_standard_labels_and_selectors_stay_stable(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    """A Deployment's selector is immutable: it names the workload and nothing that
    changes with a release, or an upgrade would have to delete and re-create it."""
    documents = rendered[variant]
    for document in documents:
        assert document["metadata"]["labels"]["app.kubernetes.io/part-of"] == PART_OF
    for name, component in WORKLOADS.items():
        deployment = one(documents, "Deployment", name)
        workload = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}
        for labels in (
            deployment["metadata"]["labels"],
            deployment["spec"]["template"]["metadata"]["labels"],
        ):
            assert workload.items() <= labels.items()
            assert labels["app.kubernetes.io/version"] == VERSION
        assert deployment["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": name}}
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        for document in (d for d in documents if d["kind"] == kind):
            selector = document["spec"].get("selector") or document["spec"]["podSelector"]
            selector = selector.get("matchLabels", selector)
            assert "app.kubernetes.io/version" not in selector, api_name(document)


def test_the_network_policy_admits_only_the_webhook_port(
    cluster: ClusterEnv, rendered: dict[str, list[Document]]
) -> None:
    policy_document = one(rendered["base"], "NetworkPolicy", "image-registry-webhook")
    policy = json.loads(
        cluster.kubectl(
            "create", "--dry-run=server", "-o", "json", "-f", "-",
            input=yaml.safe_dump(policy_document),
        ).stdout
    )  # fmt: skip
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "image-registry-webhook"}
    }
    ports = [port for rule in policy["spec"]["ingress"] for port in rule["ports"]]
    assert ports == [{"protocol": "TCP", "port": 8443}]
