from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest
import yaml

from cli.main import main
from quota.measure import stream_usage
from serving.tlsserver import READ_SECONDS
from webhook.registration import (
    EXEMPT_LABEL,
    EXEMPT_VALUE,
    POLICY_MATCH_EXPRESSION,
    SERVICEACCOUNT_MATCH_EXPRESSION,
    STREAM_LISTS_READ,
    STREAM_MATCH_EXPRESSION,
    TIMEOUT_SECONDS,
    desired_configurations,
)

SHIPPED = Path(__file__).parents[3] / "manifests" / "base" / "webhook-configurations.yaml"


def test_dev_configurations_use_url_client_config() -> None:
    mutating, validating = desired_configurations(
        name="hook",
        ca_bundle=b"CA",
        excluded_namespaces=["image-registry-system", "kube-system"],
        url="https://127.0.0.1:8443/",
    )
    hooks = mutating["webhooks"] + validating["webhooks"]
    urls = sorted(h["clientConfig"]["url"] for h in hooks)
    assert urls == [
        "https://127.0.0.1:8443/mutate/serviceaccounts",
        "https://127.0.0.1:8443/validate/imagestreams",
        "https://127.0.0.1:8443/validate/policies",
    ]
    assert all(base64.b64decode(h["clientConfig"]["caBundle"]) == b"CA" for h in hooks)


def test_cluster_configurations_reference_the_service() -> None:
    _, validating = desired_configurations(
        name="hook",
        ca_bundle=b"CA",
        excluded_namespaces=["ns"],
        service_namespace="ns",
        service_name="svc",
        service_port=443,
    )
    service = validating["webhooks"][0]["clientConfig"]["service"]
    assert service == {
        "namespace": "ns",
        "name": "svc",
        "port": 443,
        "path": "/validate/imagestreams",
    }


def test_failure_policies_and_side_effects_follow_the_contract() -> None:
    mutating, validating = desired_configurations(
        name="hook", ca_bundle=b"CA", excluded_namespaces=["a"], url="https://x"
    )
    (sa,) = mutating["webhooks"]
    streams, policies = validating["webhooks"]
    assert sa["failurePolicy"] == "Ignore"
    assert streams["failurePolicy"] == "Fail" and policies["failurePolicy"] == "Fail"
    assert {h["sideEffects"] for h in (sa, streams, policies)} == {"NoneOnDryRun"}
    assert policies["matchConditions"][0]["expression"] == POLICY_MATCH_EXPRESSION
    assert streams["rules"][0]["apiGroups"] == ["image.alauda.io"]


def test_match_expression_covers_quotas_and_every_limit_field() -> None:
    for field in ("hard", "max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
        assert f".{field}.exists(k, k.startsWith('alauda.io/'))" in POLICY_MATCH_EXPRESSION
    assert "l.type.startsWith('alauda.io/')" in POLICY_MATCH_EXPRESSION


def test_the_server_reads_a_review_as_long_as_the_api_server_waits_for_it() -> None:
    assert max(TIMEOUT_SECONDS.values()) == READ_SECONDS


def test_without_a_ca_the_bundle_is_left_for_an_injector() -> None:
    mutating, validating = desired_configurations(
        name="hook", ca_bundle=b"", excluded_namespaces=["ns"], service_namespace="ns"
    )
    hooks = mutating["webhooks"] + validating["webhooks"]
    assert len(hooks) == 3
    assert all("caBundle" not in h["clientConfig"] for h in hooks)


def test_the_shipped_manifest_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The serving pods may not write admission configuration, so the manifests carry it;
    they must not drift from what the code describes."""
    assert main(["webhook-configurations", "--namespace", "image-registry-system"]) == 0
    assert capsys.readouterr().out == SHIPPED.read_text()


def test_the_printed_manifest_carries_the_ca_and_no_yaml_aliases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    assert main(["webhook-configurations", f"--ca-file={ca}"]) == 0
    out = capsys.readouterr().out
    assert "&id" not in out and "*id" not in out
    mutating, validating = yaml.safe_load_all(out)
    assert mutating["kind"] == "MutatingWebhookConfiguration"
    assert validating["kind"] == "ValidatingWebhookConfiguration"
    hooks = mutating["webhooks"] + validating["webhooks"]
    assert {base64.b64decode(h["clientConfig"]["caBundle"]) for h in hooks} == {ca.read_bytes()}


def _hooks() -> dict[str, dict[str, object]]:
    mutating, validating = desired_configurations(
        name="hook", ca_bundle=b"CA", excluded_namespaces=["ours", "kube-system"], url="https://x"
    )
    return {h["name"].split(".")[0]: h for h in mutating["webhooks"] + validating["webhooks"]}


def test_every_webhook_skips_excluded_and_exempt_namespaces() -> None:
    for hook in _hooks().values():
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": ["ours", "kube-system"],
                },
                {"key": EXEMPT_LABEL, "operator": "NotIn", "values": [EXEMPT_VALUE]},
            ]
        }
    assert EXEMPT_LABEL.startswith("image.alauda.io/")


def test_updates_that_change_nothing_reviewed_are_skipped_by_match_conditions() -> None:
    hooks = _hooks()
    assert hooks["imagestreams"]["matchConditions"] == [
        {"name": "changes-what-the-rules-read", "expression": STREAM_MATCH_EXPRESSION}
    ]
    assert hooks["serviceaccounts"]["matchConditions"] == [
        {"name": "may-add-the-pull-secret", "expression": SERVICEACCOUNT_MATCH_EXPRESSION}
    ]
    for expression in (STREAM_MATCH_EXPRESSION, SERVICEACCOUNT_MATCH_EXPRESSION):
        assert expression.startswith("request.operation != 'UPDATE' || ")
    for section, field in STREAM_LISTS_READ:
        assert f"object.{section}.{field} != oldObject.{section}.{field}" in STREAM_MATCH_EXPRESSION


_STREAM: dict[str, object] = {
    "metadata": {"name": "app", "labels": {"a": "b"}, "annotations": {"c": "d"}},
    "spec": {"lookupPolicy": {"local": False}, "tags": [{"name": "v1"}, {"name": "v2"}]},
    "status": {
        "dockerImageRepository": "r/app",
        "tags": [{"tag": "v3", "items": [{"image": "sha256:" + "a" * 64}]}],
    },
}


def _with(path: tuple[str, ...], value: object) -> dict[str, object]:
    stream = copy.deepcopy(_STREAM)
    parent: dict[str, object] = stream
    for key in path[:-1]:
        parent = parent.setdefault(key, {})  # type: ignore[assignment]
    parent[path[-1]] = value
    return stream


@pytest.mark.parametrize(
    "path",
    [
        ("metadata", "labels"),
        ("metadata", "annotations"),
        ("metadata", "finalizers"),
        ("metadata", "managedFields"),
        ("spec", "lookupPolicy"),
        ("status", "dockerImageRepository"),
        ("status", "publicDockerImageRepository"),
    ],
)
def test_the_rules_read_nothing_outside_the_lists_the_match_condition_compares(
    path: tuple[str, ...],
) -> None:
    """The skip is safe only while stream_usage reads no field but STREAM_LISTS_READ."""
    assert stream_usage(_with(path, ["changed"])) == stream_usage(_STREAM)


@pytest.mark.parametrize("path", [(section, field) for section, field in STREAM_LISTS_READ])
def test_each_list_the_match_condition_compares_is_one_the_rules_read(
    path: tuple[str, ...],
) -> None:
    assert stream_usage(_with(path, [])) != stream_usage(_STREAM)
