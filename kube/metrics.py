"""Prometheus metrics of the reconcile plumbing, labelled by controller name."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECONCILE_ERRORS = Counter(
    "registry_reconcile_errors_total",
    "Reconcile attempts that failed and were requeued, by controller.",
    ["controller"],
)
QUEUE_DEPTH = Gauge(
    "registry_reconcile_queue_depth",
    "Keys waiting in a controller's work queue.",
    ["controller"],
)
