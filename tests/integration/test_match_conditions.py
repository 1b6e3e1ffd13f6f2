"""The API server never sends the reviews our answer could not change, and still sends the
rest: ``matchConditions`` and the namespace selector of ``webhook.registration``, as the
real kube-apiserver accepts and evaluates them, counted by our server's own metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.integration.support.cluster import CACHE_DEADLINE, CONFIGURATION_NAME, ClusterEnv
from tests.integration.support.objects import GROUP, quota, stream, stream_limits
from webhook.registration import (
    EXEMPT_LABEL,
    EXEMPT_VALUE,
    SERVICEACCOUNT_MATCH_EXPRESSION,
    STREAM_MATCH_EXPRESSION,
)

ADMISSIONS = "registry_v2_policy_admission_requests_total"
STREAMS = "validate_imagestreams"
ACCOUNTS = "mutate_serviceaccounts"
REF = "image.alauda.io/internal-registry-pull-secret-ref"
OPT_OUT = "image.alauda.io/managed-pull-secret"
TAGS_OVER_ONE = "exceeds the maximum limit per alauda.io/ImageStream (2 > 1)"


def reviews(cluster: ClusterEnv, endpoint: str) -> float:
    """Reviews our server answered on ``endpoint``: counted before each answer is sent."""
    return cluster.metric(ADMISSIONS, endpoint=endpoint)


def carries_its_secret(sa: dict[str, Any]) -> bool:
    name = f"{sa['metadata']['name']}-dockercfg"
    entries = [e.get("name") for e in sa.get("imagePullSecrets") or []]
    return (sa["metadata"].get("annotations") or {}).get(REF) == name and entries == [name]


def test_the_api_server_accepts_the_match_conditions(cluster: ClusterEnv) -> None:
    mutating = cluster.kubectl_json("get", "mutatingwebhookconfiguration", CONFIGURATION_NAME)
    validating = cluster.kubectl_json("get", "validatingwebhookconfiguration", CONFIGURATION_NAME)
    expressions = {
        hook["name"].split(".")[0]: [c["expression"] for c in hook.get("matchConditions", [])]
        for hook in mutating["webhooks"] + validating["webhooks"]
    }
    assert expressions["imagestreams"] == [STREAM_MATCH_EXPRESSION]
    assert expressions["serviceaccounts"] == [SERVICEACCOUNT_MATCH_EXPRESSION]


def test_a_stream_update_that_changes_no_tag_list_never_reaches_the_webhook(
    cluster: ClusterEnv, namespace: str
) -> None:
    cluster.apply(stream("app", ["v1"]), "-n", namespace)
    cluster.apply(stream_limits(**{"alauda.io/image-tags": "1"}), "-n", namespace)

    def enforced() -> bool:
        result = cluster.apply(stream("probe", ["a", "b"]), "-n", namespace, check=False)
        if result.returncode == 0:  # created before the cache saw the limit: create again
            cluster.kubectl("delete", "imagestream", "probe", "-n", namespace)
            return False
        return True

    cluster.wait(enforced, timeout=CACHE_DEADLINE, what="the tag limit enforced")
    custom = client.CustomObjectsApi(cluster.api)
    before = reviews(cluster, STREAMS)

    cluster.kubectl("label", "imagestream", "app", "-n", namespace, "team=a")
    cluster.kubectl("annotate", "imagestream", "app", "-n", namespace, "note=x")
    stored = custom.get_namespaced_custom_object(GROUP, "v1", namespace, "imagestreams", "app")
    custom.replace_namespaced_custom_object_status(  # a status write that changes nothing
        GROUP, "v1", namespace, "imagestreams", "app", stored
    )
    grown = cluster.apply(stream("app", ["v1", "v2"]), "-n", namespace, check=False)

    assert grown.returncode != 0 and TAGS_OVER_ONE in grown.stderr
    assert reviews(cluster, STREAMS) == before + 1  # the growing write only


def settled(cluster: ClusterEnv, namespace: str) -> None:
    """Wait until the namespace's own account writes (the default account's creation, and
    the reconciler's healing where the webhook was not asked) are done."""
    cluster.wait(
        lambda: carries_its_secret(
            cluster.kubectl_json("get", "serviceaccount", "default", "-n", namespace)
        ),
        timeout=CACHE_DEADLINE,
        what="the default account carrying its secret",
    )


@pytest.fixture
def account(cluster: ClusterEnv, namespace: str) -> Iterator[str]:
    """An account that carries its managed pull secret, in a settled namespace."""
    settled(cluster, namespace)
    cluster.kubectl("create", "serviceaccount", "app", "-n", namespace)
    sa = cluster.kubectl_json("get", "serviceaccount", "app", "-n", namespace)
    assert carries_its_secret(sa)
    yield "app"


def test_an_account_update_that_keeps_its_secret_never_reaches_the_webhook(
    cluster: ClusterEnv, namespace: str, account: str
) -> None:
    before = reviews(cluster, ACCOUNTS)
    cluster.kubectl("label", "serviceaccount", account, "-n", namespace, "team=a")
    cluster.kubectl("annotate", "serviceaccount", account, "-n", namespace, "note=x")
    dropped = json.dumps([{"op": "remove", "path": "/imagePullSecrets"}])
    cluster.kubectl(
        "patch", "serviceaccount", account, "-n", namespace, "--type=json", "-p", dropped
    )

    sa = cluster.kubectl_json("get", "serviceaccount", account, "-n", namespace)
    assert carries_its_secret(sa)  # the webhook put it back at once
    assert reviews(cluster, ACCOUNTS) == before + 1  # the write that dropped it only


def test_an_opted_out_account_still_loses_what_the_service_added(
    cluster: ClusterEnv, namespace: str, account: str
) -> None:
    cluster.kubectl("annotate", "serviceaccount", account, "-n", namespace, f"{OPT_OUT}=false")

    def cleaned() -> bool:
        sa = cluster.kubectl_json("get", "serviceaccount", account, "-n", namespace)
        annotations = sa["metadata"].get("annotations") or {}
        return REF not in annotations and not sa.get("imagePullSecrets")

    cluster.wait(cleaned, timeout=CACHE_DEADLINE, what="the opted-out account cleaned")


def test_an_exempt_namespace_is_never_reviewed(cluster: ClusterEnv, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace, f"{EXEMPT_LABEL}={EXEMPT_VALUE}")
    # A quota with no room denies every create in a namespace we review.
    cluster.apply(quota({"alauda.io/imagestreams": "0"}), "-n", namespace)
    settled(cluster, namespace)
    streams, accounts = reviews(cluster, STREAMS), reviews(cluster, ACCOUNTS)

    cluster.apply(stream("app", ["v1"]), "-n", namespace)
    sa = cluster.kubectl_json(
        "create", "serviceaccount", "app", "-n", namespace, "--dry-run=server"
    )

    assert REF not in (sa["metadata"].get("annotations") or {})
    assert (reviews(cluster, STREAMS), reviews(cluster, ACCOUNTS)) == (streams, accounts)
