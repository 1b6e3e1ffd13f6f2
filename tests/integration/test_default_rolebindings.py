"""Default registry rights against the real API server: every managed namespace gets the
pullers' and builders' RoleBindings and the ``builder`` ServiceAccount (with its managed
pull secret, from the webhook and the pull-secret reconciler like any account), a binding
a user edited and an account a user made are left alone, and the namespace label opts
out."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localcluster.frontdoor import USER_ROLES_MANIFEST
from localcluster.waiting import wait_for
from quota.pullsecrets.names import LABEL_MANAGED_BY, LABEL_MANAGED_BY_VALUE
from quota.rolebindings import BUILDERS, OPT_OUT_KEY, PULLERS
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv
from tests.integration.support.pullsecrets import (
    read,
    token_of,
    token_review,
    valid_secret,
    wait_secret,
)

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


def builder(cluster: ClusterEnv, namespace: str) -> dict[str, Any] | None:
    return read(cluster, "serviceaccount", "builder", namespace)


def wait_builder(cluster: ClusterEnv, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster.wait(
        lambda: builder(cluster, namespace),
        timeout=CACHE_DEADLINE,
        what=f"the builder account of {namespace}",
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
    wait_builder(cluster, namespace)
    cluster.kubectl("label", "namespace", namespace, f"{OPT_OUT_KEY}=false")
    cluster.wait(
        lambda: all(binding(cluster, namespace, n) is None for n in (PULLERS, BUILDERS)),
        timeout=CACHE_DEADLINE,
        what="the default rolebindings to go",
    )
    assert not may(cluster, namespace, "default", "get")
    # The builder account we made stays: opting out takes our rights, not an identity
    # that pods and tokens may hold by now (quota/builderaccount.py).
    kept = builder(cluster, namespace)
    assert kept is not None
    assert kept["metadata"]["labels"] == {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE}
    assert not may(cluster, namespace, "builder", "update")
    cluster.kubectl("label", "namespace", namespace, f"{OPT_OUT_KEY}-")
    wait_bindings(cluster, namespace)


def test_a_namespace_created_opted_out_never_gets_them_nor_a_builder(cluster: ClusterEnv) -> None:
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
        wait_builder(cluster, f"{name}-witness")
        assert binding(cluster, name, PULLERS) is None
        assert binding(cluster, name, BUILDERS) is None
        assert builder(cluster, name) is None
    finally:
        for ns in (name, f"{name}-witness"):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


# --- the builder account ------------------------------------------------------------------

FAST_POLL_SECONDS = 0.02
"""How often the timing test looks (through the API client, a few ms a read): the figure
it reports is then within 20 ms of when the account and its Secret were ready."""


def with_pull_secret(core: client.CoreV1Api, namespace: str, account: str) -> bool:
    """``account`` of ``namespace`` names its managed Secret, and that Secret holds a token
    (a missing object reads as not yet)."""
    wanted = f"{account}-dockercfg"
    try:
        raw = core.read_namespaced_service_account(account, namespace, _preload_content=False)
        if {"name": wanted} not in (json.loads(raw.data).get("imagePullSecrets") or []):
            return False
        raw = core.read_namespaced_secret(wanted, namespace, _preload_content=False)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return bool(json.loads(raw.data).get("data", {}).get(".dockerconfigjson"))


def test_a_new_namespace_gets_a_builder_account_with_a_managed_pull_secret(
    cluster: ClusterEnv,
) -> None:
    name = f"t-builder-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(cluster.api)
    started = time.monotonic()
    core.create_namespace({"metadata": {"name": name}}, _preload_content=False)
    try:
        ready: dict[str, float] = {}  # seconds from the create to each account ready

        def both_ready() -> bool:
            for account in ("builder", "default"):
                if account not in ready and with_pull_secret(core, name, account):
                    ready[account] = time.monotonic() - started
            return len(ready) == 2

        wait_for(
            both_ready,
            timeout=CACHE_DEADLINE,
            interval=FAST_POLL_SECONDS,
            what=f"the builder and default accounts of {name} with their pull secrets",
        )
        print(
            f"\nnamespace created -> ServiceAccount with its managed pull secret: "
            f"builder {ready['builder']:.2f} s, default {ready['default']:.2f} s"
        )
        account = builder(cluster, name)
        assert account is not None
        assert account["metadata"]["labels"] == {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE}
        assert account["imagePullSecrets"] == [{"name": "builder-dockercfg"}]
        # Its pull secret is the builder's own credential, and the builder may push.
        secret = valid_secret(cluster, name, "builder")
        assert secret is not None
        review = token_review(cluster, token_of(secret))
        assert review["user"]["username"] == f"system:serviceaccount:{name}:builder"
        wait_bindings(cluster, name)
        assert may(cluster, name, "builder", "update")
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_a_deleted_builder_account_is_created_again(cluster: ClusterEnv, namespace: str) -> None:
    first = wait_builder(cluster, namespace)
    cluster.kubectl("delete", "serviceaccount", "builder", "-n", namespace)

    def made_again() -> dict[str, Any] | None:
        found = builder(cluster, namespace)
        return found if found and found["metadata"]["uid"] != first["metadata"]["uid"] else None

    again = cluster.wait(made_again, timeout=CACHE_DEADLINE, what="the builder made again")
    assert again["metadata"]["labels"] == {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE}
    wait_secret(cluster, namespace, "builder", timeout=CACHE_DEADLINE)


def test_a_builder_account_a_user_made_is_never_taken_over(cluster: ClusterEnv) -> None:
    name = f"t-mine-{uuid.uuid4().hex[:8]}"
    opted_out = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {OPT_OUT_KEY: "false"}},
    }
    cluster.apply(opted_out)
    try:
        mine = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "builder", "labels": {"team": "a"}},
            "automountServiceAccountToken": False,
        }
        cluster.apply(mine, "-n", name)
        made = builder(cluster, name)
        assert made is not None
        # Opting back in makes the reconciler judge the namespace (its bindings appear);
        # a binding deleted then comes back in a later pass, so the first one, which
        # judged the account after the bindings, has finished.
        cluster.kubectl("label", "namespace", name, f"{OPT_OUT_KEY}-")
        wait_bindings(cluster, name)
        cluster.kubectl("delete", "rolebinding", BUILDERS, "-n", name)
        wait_bindings(cluster, name)
        kept = builder(cluster, name)
        assert kept is not None
        assert kept["metadata"]["uid"] == made["metadata"]["uid"]
        assert kept["metadata"]["labels"] == {"team": "a"}
        assert kept["automountServiceAccountToken"] is False
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
