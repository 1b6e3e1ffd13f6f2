"""Every metric of ours carries the service's prefix, never the registry's own ``registry_``."""

from __future__ import annotations

import importlib

from prometheus_client import REGISTRY

import controller.metrics
import frontdoor.metrics
import kube.metrics
import serving.metrics
import webhook.metrics

PREFIX = "registry_v2_policy_"
CLIENT_DEFAULTS = ("python_", "process_", "gc_")
"""What prometheus_client itself registers in every process."""


def our_metric_names() -> set[str]:
    for module in (
        webhook.metrics,
        frontdoor.metrics,
        serving.metrics,
        kube.metrics,
        controller.metrics,
    ):
        importlib.import_module(module.__name__)
    return {
        family.name for family in REGISTRY.collect() if not family.name.startswith(CLIENT_DEFAULTS)
    }


def test_every_metric_has_the_service_prefix() -> None:
    names = our_metric_names()
    assert names, "no metric found: the walk is broken"
    assert sorted(name for name in names if not name.startswith(PREFIX)) == []
