"""Prometheus metrics of the controller process's own work."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PULL_SECRETS = Counter(
    "registry_v2_policy_pull_secrets_total",
    "Managed pull secret writes by the reconciler, by action (created, refreshed, deleted).",
    ["action"],
)
MANAGED_TOKEN_EXPIRY = Gauge(
    "registry_v2_policy_managed_token_earliest_expiry_timestamp_seconds",
    "Earliest expiry (Unix time) of the tokens in managed pull secrets, as the cache holds "
    "them; +Inf without any. Tokens are refreshed at 60% of their lifetime, so this nearing "
    "now means refreshes are failing and pods are about to lose pull access.",
)
