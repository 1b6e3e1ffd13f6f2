"""The exemption label takes a right of its own, as the real kube-apiserver enforces it
(``webhook.exemption``): a tenant who may create and label namespaces can neither set,
change nor remove ``image.alauda.io/exempt``, and still edits every other label; a user
bound to the shipped exempter ClusterRole can."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from quota.names import IMAGE_GROUP
from tests.integration.support.cluster import ClusterEnv
from webhook.exemption import DENIAL, EXEMPTER_ROLE, EXEMPTION_RESOURCE, EXEMPTION_VERB, GUARD_NAME
from webhook.registration import EXEMPT_LABEL, EXEMPT_VALUE

POLICY_LOADED_SECONDS = 30
"""A new ValidatingAdmissionPolicy, or RBAC binding, reaches the API server's admission
chain or authorizer through an informer: about a second; the same wait for both."""


def _grant(cluster: ClusterEnv, name: str, body: dict[str, object]) -> None:
    cluster.kubectl("create", "-f", "-", input=json.dumps({"metadata": {"name": name}, **body}))


@pytest.fixture(scope="module")
def users(cluster: ClusterEnv) -> Iterator[tuple[str, str]]:
    """A tenant with the self-service right to create and label namespaces, and an
    exempter with the same right plus a binding to the shipped exempter role."""
    suffix = uuid.uuid4().hex[:8]
    tenant, exempter = f"tenant-{suffix}", f"exempter-{suffix}"
    role = f"namespace-self-service-{suffix}"
    rbac = "rbac.authorization.k8s.io/v1"
    created = [f"clusterrole/{role}"]
    _grant(
        cluster,
        role,
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces"],
                    "verbs": ["get", "create", "update", "patch"],
                }
            ],
        },
    )
    for user, role_name in ((tenant, role), (exempter, role), (exempter, EXEMPTER_ROLE)):
        binding = f"{user}-{role_name.replace(':', '-')}"
        _grant(
            cluster,
            binding,
            {
                "apiVersion": rbac,
                "kind": "ClusterRoleBinding",
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role_name,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )
        created.append(f"clusterrolebinding/{binding}")
    yield tenant, exempter
    cluster.kubectl("delete", *created, "--wait=false", check=False)


def namespace_manifest(name: str, labels: dict[str, str]) -> str:
    return json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    )


def create_as(
    cluster: ClusterEnv, user: str, name: str, labels: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        f"--as={user}", "create", "-f", "-", *extra,
        input=namespace_manifest(name, labels), check=False,
    )  # fmt: skip


def label_as(
    cluster: ClusterEnv, user: str, namespace: str, *changes: str
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        f"--as={user}", "label", "namespace", namespace, "--overwrite", *changes, check=False
    )


def labels_of(cluster: ClusterEnv, namespace: str) -> dict[str, str]:
    labels: dict[str, str] = cluster.kubectl_json("get", "namespace", namespace)["metadata"].get(
        "labels", {}
    )
    return labels


def refused(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode != 0 and DENIAL in result.stderr


@pytest.fixture(scope="module")
def enforced(cluster: ClusterEnv, users: tuple[str, str]) -> None:
    """Wait for the guard to be in the admission chain (a dry run creates nothing), and
    for RBAC to see the exempter's binding, the last one the fixture wrote."""
    tenant, exempter = users

    def refuses() -> bool:
        probe = create_as(
            cluster, tenant, f"t-{uuid.uuid4().hex[:10]}", {EXEMPT_LABEL: EXEMPT_VALUE},
            "--dry-run=server",
        )  # fmt: skip
        return refused(probe)

    cluster.wait(refuses, timeout=POLICY_LOADED_SECONDS, what="the exemption guard enforced")
    # A SubjectAccessReview, not `kubectl auth can-i`: for a resource discovery does not
    # list, kubectl asks about the whole argument as a core-group resource: it answered
    # no here for 30 s to a user whose ClusterRoleBinding grants the right.
    right = client.V1ResourceAttributes(
        group=IMAGE_GROUP, resource=EXEMPTION_RESOURCE, verb=EXEMPTION_VERB
    )
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user=exempter, resource_attributes=right)
    )

    def granted() -> bool:
        answer = client.AuthorizationV1Api(cluster.api).create_subject_access_review(review)
        return bool(answer.status.allowed)

    cluster.wait(granted, timeout=POLICY_LOADED_SECONDS, what="the exempter's binding seen")


def test_the_api_server_accepts_the_guard(cluster: ClusterEnv) -> None:
    policy = cluster.kubectl_json("get", "validatingadmissionpolicy", GUARD_NAME)
    assert policy["spec"]["failurePolicy"] == "Fail"
    warnings = (policy.get("status", {}).get("typeChecking") or {}).get("expressionWarnings")
    assert not warnings
    binding = cluster.kubectl_json("get", "validatingadmissionpolicybinding", GUARD_NAME)
    assert binding["spec"]["policyName"] == GUARD_NAME


@pytest.mark.usefixtures("enforced")
def test_a_user_without_the_right_cannot_create_an_exempt_namespace(
    cluster: ClusterEnv, users: tuple[str, str]
) -> None:
    tenant, _ = users
    name = f"t-{uuid.uuid4().hex[:10]}"
    for value in (EXEMPT_VALUE, "false"):  # any value: the right covers the label itself
        assert refused(create_as(cluster, tenant, name, {EXEMPT_LABEL: value}))
    assert cluster.kubectl("get", "namespace", name, check=False).returncode != 0
    # Creating a namespace is still the tenant's right: other labels pass.
    created = create_as(cluster, tenant, name, {"team": "a"})
    try:
        assert created.returncode == 0, created.stderr
        assert labels_of(cluster, name)["team"] == "a"
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.usefixtures("enforced")
def test_a_user_without_the_right_cannot_add_change_or_remove_the_label(
    cluster: ClusterEnv, users: tuple[str, str], namespace: str
) -> None:
    tenant, _ = users
    assert refused(label_as(cluster, tenant, namespace, f"{EXEMPT_LABEL}={EXEMPT_VALUE}"))
    assert EXEMPT_LABEL not in labels_of(cluster, namespace)

    cluster.kubectl("label", "namespace", namespace, f"{EXEMPT_LABEL}={EXEMPT_VALUE}")  # admin
    assert refused(label_as(cluster, tenant, namespace, f"{EXEMPT_LABEL}-"))
    assert refused(label_as(cluster, tenant, namespace, f"{EXEMPT_LABEL}=false"))
    assert labels_of(cluster, namespace)[EXEMPT_LABEL] == EXEMPT_VALUE


@pytest.mark.usefixtures("enforced")
def test_other_label_edits_by_a_user_without_the_right_still_work(
    cluster: ClusterEnv, users: tuple[str, str], namespace: str
) -> None:
    tenant, _ = users
    added = label_as(cluster, tenant, namespace, "team=a")
    assert added.returncode == 0, added.stderr
    cluster.kubectl("label", "namespace", namespace, f"{EXEMPT_LABEL}={EXEMPT_VALUE}")  # admin
    changed = label_as(cluster, tenant, namespace, "team=b", "note=x")
    assert changed.returncode == 0, changed.stderr
    removed = label_as(cluster, tenant, namespace, "note-")
    assert removed.returncode == 0, removed.stderr
    labels = labels_of(cluster, namespace)
    assert (labels["team"], labels[EXEMPT_LABEL], "note" in labels) == ("b", EXEMPT_VALUE, False)


@pytest.mark.usefixtures("enforced")
def test_a_user_bound_to_the_exempter_role_may_set_change_and_remove_it(
    cluster: ClusterEnv, users: tuple[str, str], namespace: str
) -> None:
    _, exempter = users
    name = f"t-{uuid.uuid4().hex[:10]}"
    created = create_as(cluster, exempter, name, {EXEMPT_LABEL: EXEMPT_VALUE}, "--dry-run=server")
    assert created.returncode == 0, created.stderr
    for change in (f"{EXEMPT_LABEL}={EXEMPT_VALUE}", f"{EXEMPT_LABEL}=false", f"{EXEMPT_LABEL}-"):
        result = label_as(cluster, exempter, namespace, change)
        assert result.returncode == 0, f"{change}: {result.stderr}"
    assert EXEMPT_LABEL not in labels_of(cluster, namespace)
