"""Prometheus metrics of the shared plumbing: reconcile loops (by controller) and Events."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECONCILE_ERRORS = Counter(
    "registry_v2_policy_reconcile_errors_total",
    "Reconcile attempts that failed and were requeued, by controller.",
    ["controller"],
)
QUEUE_DEPTH = Gauge(
    "registry_v2_policy_reconcile_queue_depth",
    "Keys waiting in a controller's work queue.",
    ["controller"],
)
EVENTS_DROPPED = Counter(
    "registry_v2_policy_events_dropped_total",
    "Event occurrences dropped before being written, by cause (queue_full, too_many_objects).",
    ["cause"],
)
EVENT_WRITES = Counter(
    "registry_v2_policy_event_writes_total",
    "Event writes of the aggregating recorder, by result (created, updated, failed).",
    ["result"],
)
