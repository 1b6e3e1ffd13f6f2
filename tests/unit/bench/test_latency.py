"""The latency benchmark's pure helpers: the exclusion patch, the no-op
webhook's answer and registration."""

from __future__ import annotations

import json

import jsonpatch

from bench.latency import (
    EXCLUDED_NAMESPACES,
    NOOP,
    excluded_selector_patch,
    noop_configurations,
)
from bench.noopwebhook import allow
from localcluster.stack import CONFIGURATION_NAME
from webhook import registration


def test_the_patch_adds_the_baseline_namespaces_to_every_webhooks_exclusion() -> None:
    mutating, validating = registration.desired_configurations(
        name=CONFIGURATION_NAME, ca_bundle=b"", excluded_namespaces=["ns-a", "kube-system"]
    )
    for built in (mutating, validating):
        configuration = json.loads(json.dumps(built))  # as read from the API server
        patched = jsonpatch.apply_patch(
            configuration, excluded_selector_patch(configuration, EXCLUDED_NAMESPACES)
        )
        for webhook in patched["webhooks"]:
            expression, _exempt_label = webhook["namespaceSelector"]["matchExpressions"]
            assert expression["values"] == ["ns-a", "kube-system", *EXCLUDED_NAMESPACES]
        assert excluded_selector_patch(patched, EXCLUDED_NAMESPACES) == [], "idempotent"


def test_the_no_op_webhook_allows_with_the_requests_uid() -> None:
    review = {"apiVersion": "admission.k8s.io/v1", "request": {"uid": "u-1", "object": {}}}
    answer = json.loads(allow(json.dumps(review).encode()))
    assert answer["response"] == {"uid": "u-1", "allowed": True}
    assert answer["kind"] == "AdmissionReview"


def test_the_no_op_webhook_is_registered_as_ours_but_only_for_its_namespace() -> None:
    ours = registration.desired_configurations(
        name=CONFIGURATION_NAME, ca_bundle=b"ca", excluded_namespaces=[], url="https://x"
    )
    noop = noop_configurations("https://x", b"ca")
    for mine, theirs in zip(ours, noop, strict=True):
        for hook, noop_hook in zip(mine["webhooks"], theirs["webhooks"], strict=True):
            assert noop_hook["namespaceSelector"]["matchExpressions"] == [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NOOP]}
            ]
            same = ("rules", "timeoutSeconds", "failurePolicy", "sideEffects", "clientConfig")
            assert {k: noop_hook.get(k) for k in same} == {k: hook.get(k) for k in same}
            assert noop_hook["name"] != hook["name"]
