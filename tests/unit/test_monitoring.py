"""The alerts and the metrics reference name the metrics the code exports.

``manifests/components/monitoring/prometheusrule.yaml`` is read by Prometheus and
``docs/metrics.md`` by people: a metric renamed in code would leave an alert that never
fires and a reference that misleads. The code's metrics are found by importing every
module of the three runtime packages and walking the Prometheus registry.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import yaml
from prometheus_client import REGISTRY
from prometheus_client.registry import Collector

import controller
import kube
import webhook
from serving.workermetrics import master_collectors

ROOT = Path(__file__).parents[2]
RULES = ROOT / "manifests" / "components" / "monitoring" / "prometheusrule.yaml"
REFERENCE = ROOT / "docs" / "metrics.md"
PREFIX = "registry_v2_policy_"
OURS = re.compile(rf"\b{PREFIX}[a-z0-9_]+")
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}
"""The series a metric family exposes, by type (prometheus_client's exposition)."""
QUERIED_SUFFIX = {"counter": "_total", "info": "_info"}
"""How the reference names a family: as it is queried (counters with ``_total``)."""


def _import_all(package: ModuleType) -> None:
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        importlib.import_module(module.name)


def our_families() -> dict[str, str]:
    """Name -> type of every metric family the runtime code registers."""
    for package in (webhook, controller, kube):
        _import_all(package)
    # The serve master's own collectors (its workers' metrics are the modules').
    collectors: list[Collector] = [REGISTRY, *master_collectors(ROOT / "no-such.crt")]
    families = {
        family.name: family.type
        for collector in collectors
        for family in collector.collect()
        if family.name.startswith(("registry_", PREFIX))
    }
    assert families, "no metric found: the walk is broken"
    old = sorted(name for name in families if not name.startswith(PREFIX))
    assert not old, f"metrics without the {PREFIX} prefix: {old}"
    return families


def test_every_alert_names_a_series_the_code_exports() -> None:
    series = {
        name + suffix for name, kind in our_families().items() for suffix in SERIES_SUFFIXES[kind]
    }
    rule = yaml.safe_load(RULES.read_text())
    named = {
        metric
        for group in rule["spec"]["groups"]
        for alert in group["rules"]
        for metric in OURS.findall(alert["expr"])
    }
    assert named, "no alert names one of our metrics: the pattern is broken"
    assert sorted(named - series) == []


def test_the_metrics_reference_lists_exactly_what_the_code_exports() -> None:
    exported = {name + QUERIED_SUFFIX.get(kind, "") for name, kind in our_families().items()}
    documented = set(OURS.findall(REFERENCE.read_text()))
    assert sorted(exported - documented) == [], "exported but not documented"
    assert sorted(documented - exported) == [], "documented but not exported"
