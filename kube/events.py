"""Kubernetes Events for things a user can act on, de-duplicated so a hot loop never
floods the API server."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes import client

log = logging.getLogger(__name__)

COMPONENT = "registry-v2-policy"


class Recorder(Protocol):
    """What a reconciler or handler needs of an event recorder (``EventRecorder`` is one)."""

    def record(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        *,
        namespace: str | None = None,
    ) -> None: ...


class EventRecorder:
    """Writes ``core/v1`` Events; the same (object, reason, message) at most once per
    ``interval`` seconds. Failures to record are logged, never raised."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        interval: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._interval = interval
        self._monotonic = monotonic
        self._last: dict[tuple[str, str, str, str, str], float] = {}
        self._lock = threading.Lock()

    def _should_send(self, key: tuple[str, str, str, str, str]) -> bool:
        now = self._monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            self._last[key] = now
            if len(self._last) > 10_000:  # bound memory on huge clusters
                cutoff = now - self._interval
                self._last = {k: v for k, v in self._last.items() if v >= cutoff}
            return True

    def record(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        *,
        namespace: str | None = None,
    ) -> None:
        """``involved`` is an ObjectReference-shaped dict (kind, apiVersion, name, ...)."""
        ns = namespace or involved.get("namespace") or "default"
        key = (ns, str(involved.get("kind")), str(involved.get("name")), reason, message)
        if not self._should_send(key):
            return
        now = dt.datetime.now(dt.UTC)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{involved.get('name') or 'registry'}.", "namespace": ns},
            "involvedObject": involved,
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "count": 1,
        }
        try:
            self._core.create_namespaced_event(ns, body, _request_timeout=10)
        except Exception as err:
            log.warning("could not record event %s on %s/%s: %s", reason, ns, key[2], err)


def reference(obj: dict[str, Any], kind: str, api_version: str = "v1") -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    ref = {
        "kind": kind,
        "apiVersion": api_version,
        "name": metadata.get("name", ""),
        "uid": metadata.get("uid", ""),
        "resourceVersion": metadata.get("resourceVersion", ""),
    }
    if metadata.get("namespace"):
        ref["namespace"] = metadata["namespace"]
    return ref
