"""Default registry rights against the real API server: every managed namespace gets the
pullers' and builders' RoleBindings, a binding a user edited is left alone, and the
namespace label opts out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from localcluster.frontdoor import USER_ROLES_MANIFEST
from quota.rolebindings import BUILDERS, OPT_OUT_KEY, PULLERS
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.pullsecrets import read

GROUP = "image.alauda.io"


@pytest.fixture(scope="module", autouse=True)
def user_roles(cluster: ClusterEnv) -> Iterator[None]:
    """registry-viewer and registry-editor, as the manifests' base ships them."""
    cluster.kubectl("apply", "-f", str(USER_ROLES_MANIFEST))
    yield


def binding(cluster: ClusterEnv, namespace: str, name: str) -> dict[str, Any] | None:
    return read(cluster, "rolebinding", name, namespace)


def wait_bindings(cluster: ClusterEnv, namespace: str) -> dict[str, dict[str, Any]]:
    def both() -> dict[str, dict[str, Any]] | None:
        found = {name: binding(cluster, namespace, name) for name in (PULLERS, BUILDERS)}
        if any(b is None for b in found.values()):
            return None
        return {name: b for name, b in found.items() if b is not None}

    found: dict[str, dict[str, Any]] = cluster.wait(
        both, timeout=CACHE_DEADLINE, what=f"the default rolebindings of {namespace}"
    )
    return found


def may(cluster: ClusterEnv, namespace: str, account: str, verb: str) -> bool:
    """The API server's SubjectAccessReview for ``account`` of ``namespace``, with the
    groups its token would carry."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{namespace}:{account}",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": namespace,
                "group": GROUP,
                "resource": "imagestreams",
                "subresource": "layers",
                "verb": verb,
            },
        },
    }
    answer = client.AuthorizationV1Api(cluster.api).create_subject_access_review(
        review, _preload_content=False
    )
    return bool(json.loads(answer.data)["status"].get("allowed"))


def test_a_new_namespace_lets_its_accounts_pull_and_its_builder_push(
    cluster: ClusterEnv, namespace: str
) -> None:
    found = wait_bindings(cluster, namespace)
    assert found[PULLERS]["roleRef"]["name"] == "registry-viewer"
    assert found[PULLERS]["subjects"] == [
        {
            "kind": "Group",
            "apiGroup": "rbac.authorization.k8s.io",
            "name": f"system:serviceaccounts:{namespace}",
        }
    ]
    assert found[BUILDERS]["roleRef"]["name"] == "registry-editor"
    assert found[BUILDERS]["subjects"] == [
        {"kind": "ServiceAccount", "name": "builder", "namespace": namespace}
    ]
    assert may(cluster, namespace, "default", "get")
    assert not may(cluster, namespace, "default", "update")
    assert may(cluster, namespace, "builder", "update")
    assert not may(cluster, "kube-system", "default", "get")  # never a managed namespace
    assert binding(cluster, "kube-system", PULLERS) is None


def test_a_binding_a_user_edited_is_left_alone(cluster: ClusterEnv, namespace: str) -> None:
    wait_bindings(cluster, namespace)
    mine = [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}]
    cluster.kubectl(
        "patch", "rolebinding", PULLERS, "-n", namespace, "--type=merge",
        "-p", json.dumps({"subjects": mine}),
    )  # fmt: skip
    # The edit is an event for the namespace's key; deleting the other binding is one more,
    # and its coming back shows the reconciler has judged the namespace since.
    cluster.kubectl("delete", "rolebinding", BUILDERS, "-n", namespace)
    wait_bindings(cluster, namespace)
    edited = binding(cluster, namespace, PULLERS)
    assert edited is not None and edited["subjects"] == mine
    # Opting out removes only what is still ours and unchanged.
    cluster.kubectl("label", "namespace", namespace, f"{OPT_OUT_KEY}=false")
    cluster.wait(
        lambda: binding(cluster, namespace, BUILDERS) is None,
        timeout=CACHE_DEADLINE,
        what="the builders' binding to go",
    )
    kept = binding(cluster, namespace, PULLERS)
    assert kept is not None and kept["subjects"] == mine


def test_the_opt_out_label_removes_both_and_opting_back_in_restores_them(
    cluster: ClusterEnv, namespace: str
) -> None:
    wait_bindings(cluster, namespace)
    cluster.kubectl("label", "namespace", namespace, f"{OPT_OUT_KEY}=false")
    cluster.wait(
        lambda: all(binding(cluster, namespace, n) is None for n in (PULLERS, BUILDERS)),
        timeout=CACHE_DEADLINE,
        what="the default rolebindings to go",
    )
    assert not may(cluster, namespace, "default", "get")
    cluster.kubectl("label", "namespace", namespace, f"{OPT_OUT_KEY}-")
    wait_bindings(cluster, namespace)


def test_a_namespace_created_opted_out_never_gets_them(cluster: ClusterEnv) -> None:
    name = f"t-optout-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {OPT_OUT_KEY: "false"}},
    }
    cluster.apply(manifest)
    try:
        # Another namespace created after it gets its bindings: the reconciler has run since.
        cluster.kubectl("create", "namespace", f"{name}-witness")
        wait_bindings(cluster, f"{name}-witness")
        assert binding(cluster, name, PULLERS) is None
        assert binding(cluster, name, BUILDERS) is None
    finally:
        for ns in (name, f"{name}-witness"):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
