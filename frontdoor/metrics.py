"""Prometheus metrics of the front door: requests, bytes through, push denials by rule.

Counted in each worker and summed by the master, as the serve process's
(``serving.workermetrics``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Final

from prometheus_client import Counter

from quota.decision import Cause

FRONTDOOR_REQUESTS = Counter(
    "registry_v2_policy_frontdoor_requests_total",
    "Registry API requests answered by the front door, by method, route (base, blob, "
    "upload_start, upload, manifest, tags, referrers, catalog, unknown) and HTTP status.",
    ["method", "route", "code"],
)
FRONTDOOR_BYTES = Counter(
    "registry_v2_policy_frontdoor_bytes_total",
    "Body bytes through the front door: received from clients (pushes) and sent to them "
    "(pulls and the registry's answers).",
    ["direction"],
)
FRONTDOOR_DENIALS = Counter(
    "registry_v2_policy_frontdoor_push_denials_total",
    "Manifest pushes denied, by the rule that denied them (size, tags, images, quota, other).",
    ["reason"],
)

FRONTDOOR_BODIES_INCOMPLETE = Counter(
    "registry_v2_policy_frontdoor_bodies_incomplete_total",
    "Request bodies that ended before they were whole (the client closed or cut a chunked "
    "body: cut; or it sent too slowly: timeout), by route; each cut the registry's request.",
    ["route", "how"],
)


@functools.cache
def REQUESTS(method: str, route: str, code: str) -> Counter:
    return FRONTDOOR_REQUESTS.labels(method, route, code)


@functools.cache
def BYTES(direction: str) -> Counter:
    return FRONTDOOR_BYTES.labels(direction)


DENIAL_LABELS: Final[Mapping[Cause, str]] = {
    Cause.IMAGE_STORAGE_LIMIT: "size",
    Cause.IMAGE_SIZE_UNKNOWN: "size",
    Cause.IMAGE_TAGS_LIMIT: "tags",
    Cause.IMAGES_LIMIT: "images",
    Cause.QUOTA_EXCEEDED: "quota",
    Cause.QUOTA_UNKNOWN: "quota",
}
"""The denials metric's rule label for each cause; any other cause is ``other``."""


def denial_label(cause: Cause | None) -> str:
    return "other" if cause is None else DENIAL_LABELS.get(cause, "other")


@functools.cache
def DENIALS(reason: str) -> Counter:
    return FRONTDOOR_DENIALS.labels(reason)


@functools.cache
def BODIES_INCOMPLETE(route: str, how: str) -> Counter:
    return FRONTDOOR_BODIES_INCOMPLETE.labels(route, how)
