"""Prometheus metrics of the shared plumbing: work queues, reconcile loops (by controller),
informers, leader election and Events. Names follow client-go's and controller-runtime's
(``workqueue_depth``, ``reconcile_time_seconds``, ``leader_election_master_status``) under
our prefix, so their dashboards translate."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""A reconcile is a few API calls: milliseconds when nothing changes, seconds behind the
client-side rate limit; each call gives up after 10-60 s."""
QUEUE_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)
"""Idle workers take a key in microseconds; a backlog of thousands of ServiceAccounts at the
default 50 requests/s drains in minutes (docs/benchmarks.md: 2,000 in 160 s)."""

RECONCILE_ERRORS = Counter(
    "registry_v2_policy_reconcile_errors_total",
    "Reconcile attempts that failed and were requeued, by controller.",
    ["controller"],
)
RECONCILE_DURATION = Histogram(
    "registry_v2_policy_reconcile_duration_seconds",
    "Time of one reconcile, failed ones included, by controller.",
    ["controller"],
    buckets=RECONCILE_BUCKETS,
)
WORKQUEUE_DEPTH = Gauge(
    "registry_v2_policy_workqueue_depth",
    "Keys waiting for a worker in a work queue (not delayed, not being processed), by queue.",
    ["name"],
)
WORKQUEUE_QUEUE_DURATION = Histogram(
    "registry_v2_policy_workqueue_queue_duration_seconds",
    "Time a key waited for a worker, from when it was due, by queue.",
    ["name"],
    buckets=QUEUE_BUCKETS,
)
WORKQUEUE_RETRIES = Counter(
    "registry_v2_policy_workqueue_retries_total",
    "Keys put back with backoff after a failed or conflicting reconcile, by queue.",
    ["name"],
)
INFORMER_RELISTS = Counter(
    "registry_v2_policy_informer_relists_total",
    "Full lists after the first: the watch could not resume (410 Gone, an error) and the "
    "cache was rebuilt, by informer.",
    ["informer"],
)
LEADER_STATUS = Gauge(
    "registry_v2_policy_leader_election_status",
    "1 while this replica holds the Lease (its reconcilers write), else 0; by Lease.",
    ["lease"],
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
