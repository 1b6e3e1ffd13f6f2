"""How long a delete takes to free its quota: from the delete's answer to the quota's
``status.used`` showing the lower value, as a watch on the quota sees it.

One measurement for the integration test (ours within 2 s) and for ``bench.release`` (ours
next to native quota's, in one run), so both time the same thing. The watch starts at the
quota's resourceVersion read before the delete, so no update is missed however fast it
comes; a poll would add its own interval to every figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

from localcluster.waiting import Timeout


def _used(quota: Any, resource: str) -> str | None:
    used = (quota.status.used if quota.status is not None else None) or {}
    value: str | None = used.get(resource)
    return value


def release_seconds(
    api: client.ApiClient,
    namespace: str,
    quota: str,
    resource: str,
    freed: str,
    delete: Callable[[], object],
    *,
    timeout: float,
) -> float:
    """Seconds from ``delete()`` returning to ``status.used[resource]`` of ``quota`` reading
    ``freed`` (as the API server spells it); ``Timeout`` after ``timeout`` seconds."""
    core = client.CoreV1Api(api)
    start_version = core.read_namespaced_resource_quota(quota, namespace).metadata.resource_version
    delete()
    deleted = time.monotonic()
    watcher = watch.Watch()
    try:
        for event in watcher.stream(
            core.list_namespaced_resource_quota,
            namespace,
            field_selector=f"metadata.name={quota}",
            resource_version=start_version,
            timeout_seconds=max(1, round(timeout)),
        ):
            if _used(event["object"], resource) == freed:
                return time.monotonic() - deleted
    finally:
        watcher.stop()
    raise Timeout(f"{resource} of quota {namespace}/{quota} did not read {freed} in {timeout} s")
