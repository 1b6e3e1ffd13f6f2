"""Prometheus metrics both doors count: quota charges, reviews of callers' tokens.

Counted in each worker and summed by the master (``serving.workermetrics``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import Counter
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)


def by_label(metric: M, *fixed: str) -> Callable[[str], M]:
    """``metric.labels(*fixed, label)``, looked up once per label: ``labels`` validates its
    arguments and takes a lock on every call, a few microseconds of every review."""
    return functools.cache(lambda label: metric.labels(*fixed, label))


TOKEN_REVIEWS = Counter(
    "registry_v2_policy_token_reviews_total",
    "TokenReviews the authenticators made (PushReview callers, front-door clients), by "
    "result (authenticated, rejected, error).",
    ["result"],
)

QUOTA_CHARGES = Counter(
    "registry_v2_policy_quota_charges_total",
    "ResourceQuota status.used writes made at admission, by result (charged, conflict, exceeded).",
    ["result"],
)

QUOTA_WRITES = Counter(
    "registry_v2_policy_quota_status_writes_total",
    "ResourceQuota status writes of charges and their releases (a batch of charges is one"
    " write per quota), by result (written, conflict, failed).",
    ["result"],
)
