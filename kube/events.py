"""Kubernetes Events for things a user can act on, aggregated so a hot loop never
floods the API server.

``AggregatingEventRecorder`` never writes on the caller's thread (a request, a reconcile
worker): it queues, and one background thread folds occurrences of the same (object,
type, reason) into one Event whose ``count`` grows, as client-go's EventCorrelator does
(``kubectl describe`` shows "x4 over 20m"), and writes under one global rate limit, so a
storm of denied pushes or a repeating warning costs the API server a bounded number of
writes and the caller nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, Self

import urllib3
from kubernetes.client.exceptions import ApiException

from kube import apierrors, metrics
from kube.ratelimit import RateLimiter

log = logging.getLogger(__name__)

COMPONENT = "registry-v2-policy"
REQUEST_TIMEOUT: Final = 10
"""Seconds for one Event write; only the writer thread waits on it."""
QUEUE_SIZE: Final = 1000
"""Occurrences waiting for the writer; past that they are dropped (and counted). client-go's
event broadcaster queues the same number (``maxQueuedEvents``) and drops likewise."""
AGGREGATION_WINDOW: Final = 600.0
"""An object's Event keeps counting until it has been quiet this long; then a new Event
starts. client-go aggregates over the same 10 minutes (``defaultAggregateIntervalInSeconds``)."""
EVENT_BURST: Final = 25
"""Event writes at once, all objects together: client-go's spam filter burst
(``defaultSpamBurst``), which it allows per object."""
EVENT_QPS: Final = 60 / 300
"""Then one write every 5 s: client-go refills each object's bucket every 300 s
(``defaultSpamQPS``); one shared bucket at this rate keeps 60 objects at that pace.
Occurrences wait (counted) for a token rather than being lost."""
MAX_OBJECTS: Final = 4096
"""Objects with occurrences waiting, and Events remembered for patching: client-go's LRU
size (``maxLruCacheEntries``). Past it, waiting occurrences are dropped (and counted) and
the oldest remembered Event is forgotten (its object's next occurrence starts a new one)."""
IDLE_WAKEUP: Final = 1.0
"""The writer re-checks for a stop request this often when idle (``stop`` also wakes it)."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _timestamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(
    involved: dict[str, Any],
    namespace: str,
    event_type: str,
    reason: str,
    message: str,
    *,
    count: int,
    first: dt.datetime,
    last: dt.datetime,
) -> dict[str, Any]:
    """A ``core/v1`` Event about ``involved`` (an ObjectReference-shaped dict)."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{involved.get('name') or 'registry'}.",
            "namespace": namespace,
        },
        "involvedObject": involved,
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": _timestamp(first),
        "lastTimestamp": _timestamp(last),
        "count": count,
    }


class Recorder(Protocol):
    """What a reconciler or handler needs of an event recorder
    (``AggregatingEventRecorder`` is one)."""

    def record(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        *,
        namespace: str | None = None,
    ) -> None: ...


class EventApi(Protocol):
    """``CoreV1Api`` as the aggregating recorder uses it."""

    def create_namespaced_event(
        self, namespace: str, body: dict[str, Any], **kwargs: Any
    ) -> Any: ...

    def patch_namespaced_event(
        self, name: str, namespace: str, body: Any, **kwargs: Any
    ) -> Any: ...


_Key = tuple[str, str, str, str, str, str, str]
"""namespace, kind, apiVersion, name, uid of the object; type; reason (not the message)."""


@dataclass
class _Occurrence:
    involved: dict[str, Any]
    namespace: str
    event_type: str
    reason: str
    message: str
    when: dt.datetime


@dataclass
class _Pending:
    """Occurrences of one key not written yet."""

    latest: _Occurrence
    count: int
    first: dt.datetime


@dataclass
class _Written:
    """The Event that holds a key's occurrences, while its window lasts."""

    name: str
    count: int
    last_seen: float


class AggregatingEventRecorder:
    """A ``Recorder`` whose ``record`` only queues (never blocks, never raises); one daemon
    thread aggregates and writes. ``drain`` is that thread's step: tests call it instead of
    ``start``, never both."""

    def __init__(
        self,
        api: EventApi,
        *,
        queue_size: int = QUEUE_SIZE,
        max_objects: int = MAX_OBJECTS,
        window: float = AGGREGATION_WINDOW,
        limiter: RateLimiter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._api = api
        self._queue: queue.Queue[_Occurrence | None] = queue.Queue(maxsize=queue_size)
        self._max_objects = max_objects
        self._window = window
        if limiter is None:
            limiter = RateLimiter(EVENT_QPS, EVENT_BURST, clock=monotonic)
        self._limiter = limiter
        self._monotonic = monotonic
        self._now = now
        # Owned by the writer (drain), never touched by record.
        self._pending: OrderedDict[_Key, _Pending] = OrderedDict()
        self._written: OrderedDict[_Key, _Written] = OrderedDict()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the caller's side ------------------------------------------------------------

    def record(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        *,
        namespace: str | None = None,
    ) -> None:
        ns = namespace or involved.get("namespace") or "default"
        occurrence = _Occurrence(dict(involved), ns, event_type, reason, message, self._now())
        try:
            self._queue.put_nowait(occurrence)
        except queue.Full:
            metrics.EVENTS_DROPPED.labels("queue_full").inc()

    # --- the writer's side ------------------------------------------------------------

    def drain(self) -> float | None:
        """Fold in everything queued, then write as much as the rate limit allows.

        Returns the seconds until the next write may go, or None when nothing waits.
        """
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._fold(item)
        while self._pending:
            wait = self._limiter.take_or_wait()
            if wait > 0:
                return wait
            key, pending = self._pending.popitem(last=False)
            self._write(key, pending)
        return None

    def _fold(self, occurrence: _Occurrence) -> None:
        involved = occurrence.involved
        key: _Key = (
            occurrence.namespace,
            str(involved.get("kind", "")),
            str(involved.get("apiVersion", "")),
            str(involved.get("name", "")),
            str(involved.get("uid", "")),
            occurrence.event_type,
            occurrence.reason,
        )
        pending = self._pending.get(key)
        if pending is not None:
            pending.latest = occurrence
            pending.count += 1
        elif len(self._pending) >= self._max_objects:
            metrics.EVENTS_DROPPED.labels("too_many_objects").inc()
        else:
            self._pending[key] = _Pending(occurrence, 1, occurrence.when)

    def _write(self, key: _Key, pending: _Pending) -> None:
        latest = pending.latest
        written = self._written.pop(key, None)
        if written is not None and self._monotonic() - written.last_seen >= self._window:
            written = None
        try:
            if written is not None:
                written = self._patch(written, pending)
            if written is None:
                written = self._create(pending)
        except (ApiException, urllib3.exceptions.HTTPError, ValueError) as err:
            metrics.EVENT_WRITES.labels("failed").inc()
            log.warning(
                "could not record event %s on %s/%s: %s",
                latest.reason,
                latest.namespace,
                latest.involved.get("name"),
                err,
            )
            return
        self._written[key] = written
        while len(self._written) > self._max_objects:
            self._written.popitem(last=False)

    def _patch(self, written: _Written, pending: _Pending) -> _Written | None:
        """Grow the Event's count; None when it is gone (its TTL, or a user deleted it)."""
        latest = pending.latest
        count = written.count + pending.count
        ops = [
            {"op": "replace", "path": "/count", "value": count},
            {"op": "replace", "path": "/lastTimestamp", "value": _timestamp(latest.when)},
            {"op": "replace", "path": "/message", "value": latest.message[:1024]},
        ]
        try:
            self._api.patch_namespaced_event(
                written.name, latest.namespace, ops, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as err:
            if apierrors.is_not_found(err):
                return None
            raise
        metrics.EVENT_WRITES.labels("updated").inc()
        return _Written(written.name, count, self._monotonic())

    def _create(self, pending: _Pending) -> _Written:
        latest = pending.latest
        body = event_body(
            latest.involved,
            latest.namespace,
            latest.event_type,
            latest.reason,
            latest.message,
            count=pending.count,
            first=pending.first,
            last=latest.when,
        )
        response = self._api.create_namespaced_event(
            latest.namespace, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
        name = json.loads(response.data)["metadata"]["name"]
        metrics.EVENT_WRITES.labels("created").inc()
        return _Written(str(name), pending.count, self._monotonic())

    # --- the thread -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def daemon(self) -> bool:
        """The thread never keeps a worker process alive on exit."""
        return self._thread is not None and self._thread.daemon

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float) -> None:
        """Ask the thread to end and wait up to ``timeout`` seconds; waiting writes are
        abandoned (Events are best effort)."""
        self._stopping.set()
        # Wakes an idle writer; a busy one (full queue) sees the flag after this round.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self.drain()
            except Exception:  # never let one bad Event end the writer
                log.exception("event writer: unexpected error")
                wait = None
            try:
                item = self._queue.get(timeout=min(wait or IDLE_WAKEUP, IDLE_WAKEUP))
            except queue.Empty:
                continue
            if item is not None:
                self._fold(item)


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
