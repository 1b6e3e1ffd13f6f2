"""The aggregating Event recorder: fake Event API, injected clocks, and its one thread."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from kube.events import (
    AGGREGATION_WINDOW,
    EVENT_BURST,
    EVENT_QPS,
    QUEUE_SIZE,
    AggregatingEventRecorder,
    Recorder,
)
from kube.ratelimit import RateLimiter

STREAM = {
    "kind": "ImageStream",
    "apiVersion": "image.alauda.io/v1",
    "name": "app",
    "namespace": "team-a",
}
THREAD_DEADLINE = 10.0
"""For the background thread to write or stop: milliseconds, seconds on 2 busy cores."""


@dataclass
class Raw:
    data: bytes


class FakeClocks:
    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    def monotonic(self) -> float:
        return self.now

    def utcnow(self) -> dt.datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += dt.timedelta(seconds=seconds)


class FakeEventApi:
    """Stores Events by name and applies JSON Patch ``replace`` ops as the API server does."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail: Exception | None = None
        self.written = threading.Event()

    def create_namespaced_event(self, namespace: str, body: dict[str, Any], **kwargs: Any) -> Raw:
        self.calls.append("create")
        if self.fail is not None:
            raise self.fail
        name = f"{body['metadata']['generateName']}{len(self.calls):05d}"
        stored = json.loads(json.dumps(body))
        stored["metadata"] = {"name": name, "namespace": namespace}
        self.events[(namespace, name)] = stored
        self.written.set()
        return Raw(json.dumps(stored).encode())

    def patch_namespaced_event(self, name: str, namespace: str, body: Any, **kwargs: Any) -> Raw:
        self.calls.append("patch")
        if self.fail is not None:
            raise self.fail
        event = self.events.get((namespace, name))
        if event is None:
            raise ApiException(status=404, reason="Not Found")
        assert isinstance(body, list), "a JSON Patch: the client sends lists as json-patch"
        for op in body:
            assert op["op"] == "replace" and op["path"].count("/") == 1
            event[op["path"][1:]] = op["value"]
        self.written.set()
        return Raw(json.dumps(event).encode())

    def only(self) -> dict[str, Any]:
        assert len(self.events) == 1, self.events
        return next(iter(self.events.values()))


def recorder(
    api: FakeEventApi, clocks: FakeClocks, *, queue_size: int = QUEUE_SIZE, **kwargs: Any
) -> AggregatingEventRecorder:
    return AggregatingEventRecorder(
        api, queue_size=queue_size, monotonic=clocks.monotonic, now=clocks.utcnow, **kwargs
    )


def deny(
    events: Recorder, message: str = "push of app:v1 denied: too big", **involved: str
) -> None:
    events.record({**STREAM, **involved}, "Warning", "PushDenied", message)


def dropped(cause: str) -> float:
    return (
        REGISTRY.get_sample_value("registry_v2_policy_events_dropped_total", {"cause": cause})
        or 0.0
    )


# --- off the caller's thread -------------------------------------------------------------


def test_record_only_queues_the_writer_does_the_api_call() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks)
    deny(events)
    assert api.calls == [], "record never calls the API itself"
    assert events.drain() is None
    event = api.only()
    assert event["reason"] == "PushDenied" and event["type"] == "Warning"
    assert event["involvedObject"] == STREAM
    assert event["metadata"]["namespace"] == "team-a"
    assert (event["count"], event["message"]) == (1, "push of app:v1 denied: too big")
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-01-02T03:04:05Z"
    assert event["source"] == {"component": "registry-v2-policy"}


def test_a_full_queue_drops_and_counts_never_blocks() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks, queue_size=2)
    before = dropped("queue_full")
    for n in range(5):
        deny(events, f"denied {n}")
    assert dropped("queue_full") == before + 3
    events.drain()
    assert api.only()["count"] == 2


# --- aggregation -------------------------------------------------------------------------


def test_denials_of_one_stream_for_one_reason_are_one_event_whose_count_grows() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks)
    deny(events, "push of app:v1 denied: a")
    events.drain()
    clocks.advance(30)
    deny(events, "push of app:v2 denied: b")
    deny(events, "push of app:v3 denied: c")
    events.drain()
    event = api.only()
    assert event["count"] == 3
    assert event["message"] == "push of app:v3 denied: c", "the latest denial"
    assert event["firstTimestamp"] == "2026-01-02T03:04:05Z"
    assert event["lastTimestamp"] == "2026-01-02T03:04:35Z"
    assert api.calls == ["create", "patch"]


def test_occurrences_queued_together_are_written_once() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks)
    for n in range(50):
        deny(events, f"push of app:v{n} denied")
    events.drain()
    assert api.calls == ["create"]
    assert api.only()["count"] == 50


@pytest.mark.parametrize(
    ("other", "reason"),
    [
        ({"name": "other-repo"}, "PushDenied"),
        ({"namespace": "team-b"}, "PushDenied"),
        ({}, "SomethingElse"),
    ],
    ids=["repository", "namespace", "reason"],
)
def test_another_repository_namespace_or_reason_is_another_event(
    other: dict[str, str], reason: str
) -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks)
    deny(events)
    events.record({**STREAM, **other}, "Warning", reason, "x")
    events.drain()
    assert len(api.events) == 2
    assert [event["count"] for event in api.events.values()] == [1, 1]


def test_after_a_quiet_window_a_new_event_starts() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks)
    deny(events)
    events.drain()
    clocks.advance(AGGREGATION_WINDOW - 1)
    deny(events)
    events.drain()
    assert api.calls == ["create", "patch"], "within the window: the same Event"
    clocks.advance(AGGREGATION_WINDOW)
    deny(events)
    events.drain()
    assert api.calls == ["create", "patch", "create"]
    assert sorted(event["count"] for event in api.events.values()) == [1, 2]


def test_an_event_deleted_meanwhile_is_created_again_with_the_new_occurrences() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks)
    deny(events)
    events.drain()
    api.events.clear()  # the API server's event TTL, or a user
    deny(events)
    deny(events)
    events.drain()
    assert api.calls == ["create", "patch", "create"]
    assert api.only()["count"] == 2


def test_a_failed_write_is_counted_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks)
    api.fail = ApiException(status=500, reason="etcdserver: leader changed")
    before = (
        REGISTRY.get_sample_value("registry_v2_policy_event_writes_total", {"result": "failed"})
        or 0
    )
    deny(events)
    assert events.drain() is None
    assert REGISTRY.get_sample_value(
        "registry_v2_policy_event_writes_total", {"result": "failed"}
    ) == (before + 1)
    assert any("PushDenied" in message for message in caplog.messages)
    api.fail = None
    deny(events)
    events.drain()
    assert api.only()["count"] == 1, "the failed occurrence is not retried forever"


# --- the global rate limit ---------------------------------------------------------------


def test_writes_past_the_burst_wait_for_the_bucket_and_lose_no_count() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks)
    for n in range(EVENT_BURST + 3):
        deny(events, name=f"repo-{n}")
    wait = events.drain()
    assert len(api.events) == EVENT_BURST
    assert wait == pytest.approx(1 / EVENT_QPS)
    for n in range(EVENT_BURST + 3):
        deny(events, name=f"repo-{n}")  # more denials of streams written and waiting
    assert events.drain() == pytest.approx(1 / EVENT_QPS), "nothing is written early"
    assert len(api.calls) == EVENT_BURST
    for _ in range(3):
        clocks.advance(1 / EVENT_QPS)
        events.drain()
    assert len(api.calls) == EVENT_BURST + 3
    assert len(api.events) == EVENT_BURST + 3, "the three that waited were created"
    counts = {event["involvedObject"]["name"]: event["count"] for event in api.events.values()}
    assert [counts[f"repo-{n}"] for n in range(EVENT_BURST, EVENT_BURST + 3)] == [2, 2, 2]


def test_the_rate_limit_is_one_bucket_for_all_objects_and_injectable() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    limiter = RateLimiter(qps=1.0, burst=2, clock=clocks.monotonic)
    events = recorder(api, clocks, limiter=limiter)
    for name in ("a", "b", "c"):
        deny(events, name=name)
    assert events.drain() == pytest.approx(1.0)
    assert len(api.calls) == 2


def test_waiting_objects_are_bounded_and_the_excess_counted() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    limiter = RateLimiter(qps=1.0, burst=1, clock=clocks.monotonic)
    events = recorder(api, clocks, limiter=limiter, max_objects=3)
    before = dropped("too_many_objects")
    for n in range(6):
        deny(events, name=f"repo-{n}")
    events.drain()  # three wait (one is then written), three did not fit
    assert dropped("too_many_objects") == before + 3
    deny(events, name="repo-1")  # already waiting: merged, not dropped
    events.drain()
    assert dropped("too_many_objects") == before + 3


def test_remembered_events_are_bounded() -> None:
    api, clocks = FakeEventApi(), FakeClocks()
    events = recorder(api, clocks, max_objects=2)
    for name in ("a", "b", "c"):
        deny(events, name=name)
        events.drain()
    deny(events, name="a")  # forgotten: a new Event rather than unbounded memory
    events.drain()
    assert api.calls == ["create"] * 4


# --- the background thread ---------------------------------------------------------------


def test_the_thread_writes_in_the_background_and_stops() -> None:
    api = FakeEventApi()
    events = AggregatingEventRecorder(api).start()
    try:
        deny(events)
        assert api.written.wait(THREAD_DEADLINE)
    finally:
        events.stop(THREAD_DEADLINE)
    assert not events.running
    assert api.only()["count"] == 1


def test_record_returns_while_the_writer_is_stuck_on_the_api() -> None:
    release = threading.Event()
    entered = threading.Event()

    class Stuck(FakeEventApi):
        def create_namespaced_event(
            self, namespace: str, body: dict[str, Any], **kwargs: Any
        ) -> Raw:
            entered.set()
            release.wait(THREAD_DEADLINE)
            return super().create_namespaced_event(namespace, body, **kwargs)

    api = Stuck()
    events = AggregatingEventRecorder(api, queue_size=3).start()
    try:
        deny(events)
        assert entered.wait(THREAD_DEADLINE)
        before = dropped("queue_full")
        for _ in range(10):  # returns at once: queued, or dropped when full
            deny(events, "again")
        assert dropped("queue_full") == before + 7
    finally:
        release.set()
        events.stop(THREAD_DEADLINE)
    assert not events.running


def test_the_thread_is_a_daemon_and_stop_is_idempotent() -> None:
    events = AggregatingEventRecorder(FakeEventApi()).start()
    assert events.running and events.daemon
    events.stop(THREAD_DEADLINE)
    events.stop(THREAD_DEADLINE)
    assert not events.running
