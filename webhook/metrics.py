"""Prometheus metrics of the serve process: admission and PushReview (what both doors count:
``serving.metrics``).

Counted in each worker and summed by the master (``serving.workermetrics``); the serving
certificate's expiry is the master's own (``serving.certexpiry.ExpiryCollector``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Admission and PushReview answers take milliseconds; the API server gives up at 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

ADMISSION_REQUESTS = Counter(
    "registry_v2_policy_admission_requests_total",
    "Admission requests answered, by endpoint and decision (allowed, patched, denied, error, "
    "unauthenticated: no client certificate of the API server; busy: a large body found "
    "no slot).",
    ["endpoint", "decision"],
)
ADMISSION_LATENCY = Histogram(
    "registry_v2_policy_admission_duration_seconds",
    "Time to answer an admission request, by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
BAD_REQUESTS = Counter(
    "registry_v2_policy_bad_requests_total",
    "Request bodies rejected with HTTP 400 (408 when not sent in time), by endpoint.",
    ["endpoint"],
)
PUSH_REVIEWS = Counter(
    "registry_v2_policy_push_reviews_total",
    "PushReview requests answered, by decision (allowed, denied, unauthenticated, throttled, "
    "bad_request, forbidden, error, busy: a large body found no slot).",
    ["decision"],
)
PUSH_REVIEW_LATENCY = Histogram(
    "registry_v2_policy_push_review_duration_seconds",
    "Time to answer a PushReview.",
    buckets=LATENCY_BUCKETS,
)
IMAGE_LOOKUPS = Counter(
    "registry_v2_policy_image_lookups_total",
    "Live Image reads for images a storage limit needs and the cache cannot size, by result "
    "(found, not_found, failed).",
    ["result"],
)
