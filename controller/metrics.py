"""Prometheus metrics of the controller process's own work."""

from __future__ import annotations

from prometheus_client import Counter

PULL_SECRETS = Counter(
    "registry_v2_policy_pull_secrets_total",
    "Managed pull secret writes by the reconciler, by action (created, refreshed, deleted).",
    ["action"],
)
