"""The real kube-apiserver's errors, read through ``kube.apierrors`` as the controllers read
them: each helper a reconciler relies on is shown here on the error the server sends for
that situation, not on a fake's idea of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import apierrors
from tests.integration.support.cluster import PROPAGATION_SECONDS, ClusterEnv, wait_for

FINALIZER = "test.image.alauda.io/hold"
"""Holds a deleted namespace in phase Terminating until the test lets it go."""


def secret(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}


def raised(call: object, *args: object, **kwargs: object) -> ApiException:
    assert callable(call)
    with pytest.raises(ApiException) as err:
        call(*args, **kwargs)
    return err.value


@pytest.fixture
def terminating(cluster: ClusterEnv) -> Iterator[str]:
    """A namespace that has been deleted and stays Terminating while the test runs."""
    core = client.CoreV1Api(cluster.api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name, "finalizers": [FINALIZER]}})
    try:
        core.delete_namespace(name)
        yield name
    finally:
        core.patch_namespace(name, [{"op": "remove", "path": "/metadata/finalizers"}])


def test_a_create_in_a_terminating_namespace_carries_the_namespace_terminating_cause(
    cluster: ClusterEnv, terminating: str
) -> None:
    """The pull-secret reconciler requeues quietly on this, and only on this, Forbidden."""
    core = client.CoreV1Api(cluster.api)

    def refused() -> ApiException | None:
        try:
            core.create_namespaced_secret(terminating, secret("s"))
        except ApiException as err:
            return err if apierrors.is_forbidden(err) else None
        return None  # the lifecycle plugin's namespace cache has not seen the delete yet

    err = wait_for(refused, timeout=PROPAGATION_SECONDS, what="a Forbidden create")
    assert apierrors.is_namespace_terminating(err)


def test_rbac_forbidden_is_not_a_terminating_namespace(cluster: ClusterEnv, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    err = raised(
        core.create_namespaced_secret,
        namespace,
        secret("s"),
        _headers={"Impersonate-User": "nobody"},
    )
    assert apierrors.is_forbidden(err)
    assert not apierrors.is_namespace_terminating(err)


def test_a_create_that_lost_a_race_already_exists_and_a_stale_replace_conflicts(
    cluster: ClusterEnv, namespace: str
) -> None:
    core = client.CoreV1Api(cluster.api)
    created = core.create_namespaced_secret(namespace, secret("s"))
    exists = raised(core.create_namespaced_secret, namespace, secret("s"))
    assert apierrors.is_already_exists(exists)
    assert not apierrors.is_conflict(exists)

    core.replace_namespaced_secret("s", namespace, {**secret("s"), "data": {"a": "Yg=="}})
    stale = {
        **secret("s"),
        "metadata": {"name": "s", "resourceVersion": created.metadata.resource_version},
    }
    conflict = raised(core.replace_namespaced_secret, "s", namespace, stale)
    assert apierrors.is_conflict(conflict)
    assert not apierrors.is_already_exists(conflict)


def test_a_delete_whose_uid_precondition_fails_is_a_conflict(
    cluster: ClusterEnv, namespace: str
) -> None:
    """``PullSecretApi.delete_secret`` takes this for "not the Secret we meant"."""
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_secret(namespace, secret("s"))
    err = raised(
        core.delete_namespaced_secret,
        "s",
        namespace,
        body={"preconditions": {"uid": str(uuid.uuid4())}},
    )
    assert apierrors.is_conflict(err)


def test_a_failed_json_patch_test_is_invalid(cluster: ClusterEnv, namespace: str) -> None:
    """The pull-secret reconciler guards its ServiceAccount patches with a resourceVersion
    test op; a stale one is this."""
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "sa"}})
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"}]
    err = raised(core.patch_namespaced_service_account, "sa", namespace, ops)
    assert apierrors.is_invalid(err)


def test_a_missing_object_is_named_and_a_missing_resource_is_not(
    cluster: ClusterEnv, namespace: str
) -> None:
    """The tag reconciler deletes tags only when the stream is missing, never when the
    Image API is."""
    core = client.CoreV1Api(cluster.api)
    missing = raised(core.read_namespaced_secret, "none", namespace)
    assert apierrors.names_object(missing, "none", "secrets", group="")

    custom = client.CustomObjectsApi(cluster.api)
    unserved = raised(
        custom.get_namespaced_custom_object,
        "unserved.image.alauda.io",
        "v1",
        namespace,
        "imagestreams",
        "none",
    )
    assert apierrors.is_not_found(unserved)
    assert not apierrors.names_object(unserved, "none", "imagestreams")
