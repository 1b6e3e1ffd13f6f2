"""The walking skeleton: the real kube-apiserver calls our webhook over TLS."""

from __future__ import annotations

import base64

from tests.integration.support.cluster import CONFIGURATION_NAME, SERVICE_NAMESPACE, ClusterEnv

REF = "image.alauda.io/internal-registry-pull-secret-ref"


def imagestream(name: str, tags: list[str] | None = None) -> dict[str, object]:
    return {
        "apiVersion": "image.alauda.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": name},
        "spec": {"tags": [{"name": t} for t in tags or []]},
    }


def test_serviceaccount_created_with_kubectl_carries_the_patch(
    cluster: ClusterEnv, namespace: str
) -> None:
    cluster.kubectl("create", "serviceaccount", "pusher", "-n", namespace)
    sa = cluster.kubectl_json("get", "serviceaccount", "pusher", "-n", namespace)
    assert sa["metadata"]["annotations"][REF] == "pusher-dockercfg"


def test_server_side_dry_run_reaches_the_mutating_webhook(
    cluster: ClusterEnv, namespace: str
) -> None:
    out = cluster.kubectl_json(
        "create", "serviceaccount", "dry", "-n", namespace, "--dry-run=server"
    )
    assert out["metadata"]["annotations"][REF] == "dry-dockercfg"


def test_excluded_namespaces_are_not_mutated(cluster: ClusterEnv) -> None:
    for ns in (SERVICE_NAMESPACE, "kube-system"):
        out = cluster.kubectl_json(
            "create", "serviceaccount", "untouched", "-n", ns, "--dry-run=server"
        )
        assert REF not in (out["metadata"].get("annotations") or {}), ns


def test_imagestream_apply_reaches_the_validating_webhook(
    cluster: ClusterEnv, namespace: str
) -> None:
    metric = "registry_v2_policy_admission_requests_total"
    before = cluster.metric(metric, endpoint="validate_imagestreams")
    cluster.apply(imagestream("app", ["v1"]), "-n", namespace)
    after = cluster.metric(metric, endpoint="validate_imagestreams")
    assert after >= before + 1
    stored = cluster.kubectl_json("get", "imagestream", "app", "-n", namespace)
    assert stored["spec"]["tags"] == [{"name": "v1"}]


def test_webhook_configurations_match_the_contract(cluster: ClusterEnv) -> None:
    mutating = cluster.kubectl_json("get", "mutatingwebhookconfiguration", CONFIGURATION_NAME)
    validating = cluster.kubectl_json("get", "validatingwebhookconfiguration", CONFIGURATION_NAME)
    by_name = {h["name"]: h for h in mutating["webhooks"] + validating["webhooks"]}
    assert len(by_name) == 3
    sa = by_name["serviceaccounts.webhook.image.alauda.io"]
    streams = by_name["imagestreams.webhook.image.alauda.io"]
    policies = by_name["policies.webhook.image.alauda.io"]
    assert sa["failurePolicy"] == "Ignore"
    assert streams["failurePolicy"] == "Fail"
    assert policies["failurePolicy"] == "Fail"
    assert policies["matchConditions"][0]["expression"].count("alauda.io/") >= 2
    assert streams["rules"][0]["resources"] == ["imagestreams", "imagestreams/status"]
    for hook in by_name.values():
        assert hook["sideEffects"] == "NoneOnDryRun"
        assert hook["admissionReviewVersions"] == ["v1"]
        expr = hook["namespaceSelector"]["matchExpressions"][0]
        assert expr["key"] == "kubernetes.io/metadata.name"
        assert expr["operator"] == "NotIn"
        assert {SERVICE_NAMESPACE, "kube-system"} <= set(expr["values"])
        ca = base64.b64decode(hook["clientConfig"]["caBundle"])
        assert b"BEGIN CERTIFICATE" in ca


def test_a_denying_webhook_fails_kubectl_apply_with_our_message(
    cluster: ClusterEnv, namespace: str
) -> None:
    limit_range = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "images"},
        "spec": {"limits": [{"type": "alauda.io/ImageStream", "max": {"alauda.io/images": "-1"}}]},
    }
    result = cluster.apply(limit_range, "-n", namespace, check=False)
    assert result.returncode != 0
    assert (
        'admission webhook "policies.webhook.image.alauda.io" denied the request' in result.stderr
    )
    assert 'LimitRange "images" is invalid' in result.stderr
    assert "spec.limits[0].max[alauda.io/images]" in result.stderr
    missing = cluster.kubectl("get", "limitrange", "images", "-n", namespace, check=False)
    assert missing.returncode != 0


def test_native_quota_edits_do_not_reach_the_policy_webhook(
    cluster: ClusterEnv, namespace: str
) -> None:
    metric = "registry_v2_policy_admission_requests_total"
    before = cluster.metric(metric, endpoint="validate_policies")
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "pods"},
        "spec": {"hard": {"pods": "10"}},
    }
    cluster.apply(quota, "-n", namespace)
    assert cluster.metric(metric, endpoint="validate_policies") == before
