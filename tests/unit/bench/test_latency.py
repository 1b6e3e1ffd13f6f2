"""The latency benchmark's pure helpers: the exclusion patch and the metrics sum."""

from __future__ import annotations

import json

import jsonpatch

from bench.latency import EXCLUDED_NAMESPACES, excluded_selector_patch, metric_sum
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
            (expression,) = webhook["namespaceSelector"]["matchExpressions"]
            assert expression["values"] == ["ns-a", "kube-system", *EXCLUDED_NAMESPACES]
        assert excluded_selector_patch(patched, EXCLUDED_NAMESPACES) == [], "idempotent"


def test_counters_are_summed_over_replicas_by_label() -> None:
    page = '# TYPE c_total counter\nc_total{result="charged"} 3.0\nc_total{result="conflict"} 1.0\n'
    assert metric_sum([page, page], "c_total", result="charged") == 6
    assert metric_sum([page], "c_total") == 4
    assert metric_sum([], "c_total", result="conflict") == 0
