"""LeaderElector's loop against an in-memory Lease API, with fake clocks and a fake wait.

The fake ``wait`` advances both clocks by the requested period and then runs the test's
script for that tick, so every scenario is a deterministic sequence of periods. Waits on
the elector's own events (for the leader callback to finish) are real waits on those
events, bounded by a deadline.
"""

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from kube.apierrors import ALREADY_EXISTS, CONFLICT
from kube.leaderelection import (
    LeaderElector,
    LeaseAction,
    decide,
    default_identity,
    release_spec,
)
from quota.timestamps import format_micro_time, parse_rfc3339
from tests.unit.apistatus import api_error

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ME = "replica-a"
OTHER = "replica-b"
NS, NAME = "registry-system", "registry-controller"
DEADLINE = 10.0  # real seconds any condition wait may take before the test fails


class Response:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.data = json.dumps(obj).encode()


class FakeLeaseApi:
    """One Lease with resourceVersion checks, like the API server; records every call."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.writes: list[dict[str, Any]] = []  # specs we wrote, in order
        self.error: Exception | None = None  # raised by every call while set
        self.before_write: Callable[[], None] | None = None

    def put(self, spec: dict[str, Any]) -> None:
        """Another replica writes (or the Lease is seeded)."""
        self.version += 1
        self.lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": NAME, "namespace": NS, "resourceVersion": str(self.version)},
            "spec": spec,
        }

    def read_namespaced_lease(self, name: str, namespace: str, **kwargs: Any) -> Response:
        self._call("read", kwargs, name=name, namespace=namespace)
        if self.lease is None:
            raise ApiException(status=404, reason="Not Found")
        return Response(self.lease)

    def create_namespaced_lease(self, namespace: str, body: Any, **kwargs: Any) -> Response:
        self._call("create", kwargs, namespace=namespace, body=body)
        self._before_write()
        if self.lease is not None:
            raise api_error(ALREADY_EXISTS, name=NAME, kind="leases")
        assert body["metadata"] == {"name": NAME, "namespace": NS}
        assert (body["apiVersion"], body["kind"]) == ("coordination.k8s.io/v1", "Lease")
        self.put(body["spec"])
        self.writes.append(body["spec"])
        assert self.lease is not None
        return Response(self.lease)

    def replace_namespaced_lease(
        self, name: str, namespace: str, body: Any, **kwargs: Any
    ) -> Response:
        self._call("replace", kwargs, name=name, namespace=namespace, body=body)
        self._before_write()
        if self.lease is None:
            raise ApiException(status=404, reason="Not Found")
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise api_error(CONFLICT, name=NAME, kind="leases")
        self.put(body["spec"])
        self.writes.append(body["spec"])
        return Response(self.lease)

    @property
    def spec(self) -> dict[str, Any]:
        assert self.lease is not None
        spec: dict[str, Any] = self.lease["spec"]
        return spec

    def _call(self, verb: str, kwargs: dict[str, Any], **args: Any) -> None:
        assert kwargs["_preload_content"] is False
        assert kwargs["_request_timeout"] > 0
        if "name" in args:
            assert args["name"] == NAME
        assert args["namespace"] == NS
        self.calls.append((verb, kwargs))
        if self.error is not None:
            raise self.error

    def _before_write(self) -> None:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()


class Harness:
    """Fake time, a scripted wait, and callbacks that record what happened when."""

    def __init__(self, api: FakeLeaseApi, **timing: Any) -> None:
        self.api = api
        self.mono = 0.0
        self.wall = T0
        self.tick = 0
        self.stop = threading.Event()
        self.script: dict[int, Callable[[], None]] = {}
        self.max_ticks = 200
        self.finish_wait = DEADLINE  # real bound on waits for the callback to return
        self.started: list[float] = []  # monotonic time at each on_started_leading
        self.stopped: list[float] = []
        self.lost_events: list[threading.Event] = []
        self.threads: list[threading.Thread] = []  # one per term, running the callback
        self.started_event = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.overlapped = False
        self.callback: Callable[[threading.Event], None] = self.obedient
        self.elector = LeaderElector(
            api,
            NS,
            NAME,
            ME,
            clock=lambda: self.wall,
            monotonic=lambda: self.mono,
            wait=self.wait,
            **timing,
        )

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event is not self.stop and event.wait(self.finish_wait):
            return True
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)
        self.tick += 1
        assert self.tick <= self.max_ticks, "scenario did not end"
        if self.tick in self.script:
            self.script[self.tick]()
        return event.is_set()

    def obedient(self, lost: threading.Event) -> None:
        """A leader callback that works until told its term ended."""
        assert lost.wait(DEADLINE), "term never ended"

    def on_started(self, lost: threading.Event) -> None:
        with self.lock:
            self.overlapped |= self.running > 0
            self.running += 1
            self.started.append(self.mono)
            self.lost_events.append(lost)
            self.threads.append(threading.current_thread())
        self.started_event.set()
        try:
            self.callback(lost)
        finally:
            with self.lock:
                self.running -= 1

    def on_stopped(self) -> None:
        assert not self.elector.is_leader
        self.stopped.append(self.mono)

    def at(self, tick: int, action: Callable[[], None]) -> None:
        self.script[tick] = action

    def stop_when_leading(self, tick: int) -> None:
        def check() -> None:
            assert self.started_event.wait(DEADLINE)
            assert self.elector.is_leader
            self.stop.set()

        self.at(tick, check)

    def run(self) -> None:
        self.elector.run(self.on_started, self.on_stopped, self.stop)
        assert not self.elector.is_leader
        assert not self.overlapped
        for thread in self.threads:
            thread.join(DEADLINE)
            assert not thread.is_alive()


def other_holds(api: FakeLeaseApi, renewed: datetime, transitions: int = 3) -> None:
    api.put(
        {
            "holderIdentity": OTHER,
            "leaseDurationSeconds": 15,
            "acquireTime": format_micro_time(T0 - timedelta(hours=1)),
            "renewTime": format_micro_time(renewed),
            "leaseTransitions": transitions,
        }
    )


def test_creates_the_lease_leads_renews_and_releases_on_stop() -> None:
    api = FakeLeaseApi()
    h = Harness(api)
    h.stop_when_leading(4)
    h.run()
    assert h.started == [0.0]
    assert h.stopped == [8.0]
    assert h.lost_events[0].is_set()
    verbs = [verb for verb, _ in api.calls]
    assert verbs[:2] == ["read", "create"]
    assert verbs[2:8] == ["read", "replace"] * 3  # renewals at 2, 4, 6 s
    assert verbs[8:] == ["read", "replace"]  # the release
    created, *renewals, released = api.writes
    assert created["holderIdentity"] == ME
    assert created["leaseTransitions"] == 0
    assert [parse_rfc3339(w["renewTime"]) for w in renewals] == [
        T0 + timedelta(seconds=s) for s in (2, 4, 6)
    ]
    assert all(w["acquireTime"] == created["acquireTime"] for w in renewals)
    assert released["holderIdentity"] == ""
    assert released["leaseDurationSeconds"] == 1
    assert released["leaseTransitions"] == 0


def test_replace_carries_the_resource_version_read() -> None:
    api = FakeLeaseApi()
    h = Harness(api)
    h.stop_when_leading(2)
    h.run()
    replaces = [kwargs for verb, kwargs in api.calls if verb == "replace"]
    assert replaces  # the fake refuses a stale resourceVersion, so these were checked
    assert api.version == len(api.writes)


def test_waits_for_a_live_holder_then_takes_over_once_it_stops_renewing() -> None:
    api = FakeLeaseApi()
    # The record looks ancient by its renewTime, but we only trust our own observation:
    # it must stay unchanged for a whole lease duration from when we first saw it.
    other_holds(api, renewed=T0 - timedelta(days=1))
    h = Harness(api)
    h.stop_when_leading(9)
    h.run()
    assert h.started == [16.0]  # first attempt after 15 s of an unchanged record
    assert api.writes[0]["holderIdentity"] == ME
    assert api.writes[0]["leaseTransitions"] == 4
    assert api.writes[0]["acquireTime"] == format_micro_time(T0 + timedelta(seconds=16))


def test_never_takes_over_a_holder_that_keeps_renewing_even_with_a_skewed_clock() -> None:
    api = FakeLeaseApi()
    other_holds(api, renewed=T0 - timedelta(days=1))
    h = Harness(api)
    for tick in range(1, 30):
        # Every 10 s the other replica renews, with a clock a day behind.
        if tick % 5 == 0:
            h.at(tick, lambda: other_holds(api, renewed=h.wall - timedelta(days=1)))
    h.at(30, h.stop.set)
    h.run()
    assert h.started == []
    assert h.stopped == []
    assert api.writes == []


def test_a_released_lease_is_taken_at_once_by_a_restarted_process() -> None:
    api = FakeLeaseApi()
    api.put(
        {
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": format_micro_time(T0),
            "renewTime": format_micro_time(T0),
            "leaseTransitions": 5,
        }
    )
    h = Harness(api)
    h.stop_when_leading(1)
    h.run()
    assert h.started == [0.0]
    assert api.writes[0]["leaseTransitions"] == 6


def test_losing_a_race_with_409_means_waiting_for_the_winner() -> None:
    api = FakeLeaseApi()
    other_holds(api, renewed=T0)
    api.put({**api.spec, "holderIdentity": ""})  # free: both replicas go for it
    h = Harness(api)
    # The other replica's write lands between our read and our replace.
    api.before_write = lambda: other_holds(api, renewed=h.wall, transitions=4)
    for tick in range(1, 12):
        h.at(tick, lambda: other_holds(api, renewed=h.wall, transitions=4))
    h.at(12, h.stop.set)
    h.run()
    assert [verb for verb, _ in api.calls][:2] == ["read", "replace"]
    assert api.writes == []
    assert h.started == []
    assert api.spec["holderIdentity"] == OTHER


def test_steps_down_when_renewals_fail_past_the_renew_deadline() -> None:
    api = FakeLeaseApi()
    h = Harness(api)

    def outage() -> None:
        assert h.started_event.wait(DEADLINE)
        api.error = ApiException(status=503, reason="Unavailable")

    h.at(1, outage)  # the renewal at 2 s fails, and every one after
    h.at(10, h.stop.set)
    h.run()
    # Last successful write started at 0 s; attempts at 2, 4, 6, 8 s are within the
    # 10 s deadline, the one at 10 s is not.
    assert h.started == [0.0]
    assert h.stopped == [10.0]
    assert h.lost_events[0].is_set()
    # While leading, no call may run past the deadline: timeouts shrink towards it.
    leading_timeouts = [
        kwargs["_request_timeout"] for verb, kwargs in api.calls[2:] if verb == "read"
    ][:4]
    assert leading_timeouts == [pytest.approx(t) for t in (8.0, 6.0, 4.0, 2.0)]
    assert api.writes[1:] == []  # no release: we could not write


def test_a_network_error_is_survived_like_an_api_error() -> None:
    api = FakeLeaseApi()
    h = Harness(api)

    def blip() -> None:
        assert h.started_event.wait(DEADLINE)
        api.error = ConnectionResetError("reset by peer")

    def heal() -> None:
        api.error = None

    h.at(1, blip)
    h.at(3, heal)  # failures at 2 and 4 s, then renewed at 6 s: still leading
    h.stop_when_leading(6)
    h.run()
    assert h.started == [0.0]
    assert h.stopped == [12.0]
    assert api.spec["holderIdentity"] == ""  # released


def test_steps_down_at_once_when_another_replica_holds_the_lease() -> None:
    api = FakeLeaseApi()
    h = Harness(api)

    def taken() -> None:
        assert h.started_event.wait(DEADLINE)
        other_holds(api, renewed=h.wall, transitions=1)

    h.at(2, taken)  # during the wait before the renewal at 4 s
    h.at(4, h.stop.set)
    h.run()
    assert h.stopped == [4.0]
    assert [w["holderIdentity"] for w in api.writes] == [ME, ME]  # create, renew at 2 s
    assert api.spec["holderIdentity"] == OTHER  # not released by us


def test_steps_down_when_the_lease_is_deleted_under_it() -> None:
    api = FakeLeaseApi()
    h = Harness(api)

    def delete() -> None:
        assert h.started_event.wait(DEADLINE)
        api.lease = None

    h.at(1, delete)
    h.at(3, h.stop.set)
    h.run()
    # Lost at 2 s; campaigning again, it recreates the Lease as a new term.
    assert h.started == [0.0, 2.0]
    assert h.stopped == [2.0, 6.0]
    assert [verb for verb, _ in api.calls][2:5] == ["read", "read", "create"]


def test_campaigns_again_after_losing_and_never_overlaps_terms() -> None:
    api = FakeLeaseApi()
    h = Harness(api)
    h.callback = slow_to_stop(h)

    def outage() -> None:
        assert h.started_event.wait(DEADLINE)
        api.error = ApiException(status=500, reason="boom")

    def recover() -> None:
        api.error = None

    h.at(1, outage)
    h.at(7, recover)
    h.at(12, h.stop.set)
    h.run()
    assert h.stopped[0] == 10.0
    assert len(h.started) == 2
    assert h.started[1] > h.stopped[0]
    assert api.writes[-1]["holderIdentity"] == ""  # second term released on stop


def slow_to_stop(h: Harness) -> Callable[[threading.Event], None]:
    """A callback that keeps running a little after its term ends."""

    def callback(lost: threading.Event) -> None:
        assert lost.wait(DEADLINE)
        # Still inside the callback: the elector must not start another term yet.
        with h.lock:
            assert h.running == 1

    return callback


def test_a_callback_that_ignores_stop_keeps_the_lease_until_it_expires() -> None:
    api = FakeLeaseApi()
    h = Harness(api, lease_duration=15, renew_deadline=10, retry_period=2)
    h.finish_wait = 0.01
    gate = threading.Event()

    def stubborn(lost: threading.Event) -> None:
        assert gate.wait(DEADLINE)

    h.callback = stubborn
    h.stop_when_leading(1)
    try:
        h.elector.run(h.on_started, h.on_stopped, h.stop)
    finally:
        gate.set()
    # Kept renewing while waiting 10 s for the callback, then gave up without releasing.
    assert h.stopped == [12.0]
    assert api.spec["holderIdentity"] == ME
    assert len(api.writes) == 1 + 4


def test_a_callback_that_fails_ends_the_term_and_a_new_one_starts() -> None:
    api = FakeLeaseApi()
    h = Harness(api)
    second_term = threading.Event()

    def crash_first(lost: threading.Event) -> None:
        if len(h.started) == 1:
            raise RuntimeError("controller crashed")
        second_term.set()
        assert lost.wait(DEADLINE)

    def first_term_over() -> None:
        assert h.started_event.wait(DEADLINE)
        h.threads[0].join(DEADLINE)  # the crash has happened

    def stop_in_second_term() -> None:
        assert second_term.wait(DEADLINE)
        h.stop.set()

    h.callback = crash_first
    h.at(1, first_term_over)  # noticed at 2 s: released, then taken again as a new term
    h.at(2, stop_in_second_term)
    h.run()
    assert h.started == [0.0, 2.0]
    assert h.stopped == [2.0, 4.0]
    assert [(w["holderIdentity"], w["leaseTransitions"]) for w in api.writes] == [
        (ME, 0),
        ("", 0),
        (ME, 1),
        ("", 1),
    ]


def test_stop_before_leading_writes_nothing() -> None:
    api = FakeLeaseApi()
    other_holds(api, renewed=T0)
    h = Harness(api)
    h.at(3, h.stop.set)
    h.run()
    assert h.started == []
    assert h.stopped == []
    assert [verb for verb, _ in api.calls] == ["read"] * 3


def test_an_already_set_stop_returns_at_once() -> None:
    api = FakeLeaseApi()
    h = Harness(api)
    h.stop.set()
    h.run()
    assert api.calls == []


@pytest.mark.parametrize(
    ("duration", "deadline", "retry"),
    [(10, 10.0, 2.0), (15, 2.0, 2.0), (15, 10.0, 0.0), (5, 10.0, 2.0)],
)
def test_inconsistent_timing_is_refused(duration: int, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError):
        LeaderElector(
            FakeLeaseApi(),
            NS,
            NAME,
            ME,
            lease_duration=duration,
            renew_deadline=deadline,
            retry_period=retry,
        )


def test_an_empty_identity_is_refused() -> None:
    with pytest.raises(ValueError):
        LeaderElector(FakeLeaseApi(), NS, NAME, "")


def test_an_api_client_is_wrapped_in_the_coordination_api() -> None:
    elector = LeaderElector(client.ApiClient(client.Configuration()), NS, NAME, ME)
    assert isinstance(elector._api, client.CoordinationV1Api)


def stamp(value: datetime) -> str:
    return format_micro_time(value)


def lease(
    holder: str | None,
    renewed: datetime | None = T0,
    *,
    duration: object = 15,
    transitions: object = 3,
    acquired: datetime = T0 - timedelta(hours=1),
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "leaseDurationSeconds": duration,
        "acquireTime": stamp(acquired),
        "leaseTransitions": transitions,
    }
    if holder is not None:
        spec["holderIdentity"] = holder
    if renewed is not None:
        spec["renewTime"] = stamp(renewed)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "registry-controller", "namespace": "ns", "resourceVersion": "7"},
        "spec": spec,
    }


def test_no_lease_means_create_holding_it() -> None:
    decision = decide(None, ME, T0, 15)
    assert decision.action is LeaseAction.CREATE
    assert decision.holder == ""
    assert decision.spec == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-01-01T00:00:00.000000Z",
        "renewTime": "2026-01-01T00:00:00.000000Z",
        "leaseTransitions": 0,
    }


def test_our_lease_is_renewed_keeping_acquire_time_and_transitions() -> None:
    now = T0 + timedelta(seconds=2, microseconds=7)
    decision = decide(lease(ME), ME, now, 20)
    assert decision.action is LeaseAction.RENEW
    assert decision.holder == ME
    assert decision.spec == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 20,
        "acquireTime": stamp(T0 - timedelta(hours=1)),
        "renewTime": "2026-01-01T00:00:02.000007Z",
        "leaseTransitions": 3,
    }


def test_our_lease_is_renewed_even_when_it_looks_expired() -> None:
    # Nobody took it over (we are still the holder), so it is still ours.
    decision = decide(lease(ME), ME, T0 + timedelta(hours=1), 15)
    assert decision.action is LeaseAction.RENEW
    assert decision.spec is not None
    assert decision.spec["leaseTransitions"] == 3


def test_a_live_lease_of_another_holder_means_wait() -> None:
    decision = decide(lease(OTHER), ME, T0 + timedelta(seconds=14), 15)
    assert decision.action is LeaseAction.WAIT
    assert decision.spec is None
    assert decision.holder == OTHER


def test_an_expired_lease_is_taken_over_with_one_more_transition() -> None:
    now = T0 + timedelta(seconds=30)
    decision = decide(lease(OTHER), ME, now, 15)
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.holder == OTHER
    assert decision.spec == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "acquireTime": stamp(now),
        "renewTime": stamp(now),
        "leaseTransitions": 4,
    }


def test_expiry_boundary_is_renew_time_plus_duration() -> None:
    expiry = T0 + timedelta(seconds=15)
    just_before = decide(lease(OTHER), ME, expiry - timedelta(microseconds=1), 15)
    at_expiry = decide(lease(OTHER), ME, expiry, 15)
    assert just_before.action is LeaseAction.WAIT
    assert at_expiry.action is LeaseAction.ACQUIRE


def test_expiry_uses_the_duration_written_in_the_lease() -> None:
    short = lease(OTHER, duration=1)
    assert decide(short, ME, T0 + timedelta(milliseconds=999), 60).action is LeaseAction.WAIT
    assert decide(short, ME, T0 + timedelta(seconds=1), 60).action is LeaseAction.ACQUIRE


@pytest.mark.parametrize("duration", [None, 0, -5, "15", True])
def test_a_missing_or_bad_duration_falls_back_to_ours(duration: object) -> None:
    odd = lease(OTHER, duration=duration)
    assert decide(odd, ME, T0 + timedelta(seconds=9), 10).action is LeaseAction.WAIT
    assert decide(odd, ME, T0 + timedelta(seconds=10), 10).action is LeaseAction.ACQUIRE


@pytest.mark.parametrize("holder", ["", None])
def test_a_lease_without_holder_is_free_at_once(holder: str | None) -> None:
    decision = decide(lease(holder, renewed=T0), ME, T0, 15)
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.holder == ""
    assert decision.spec is not None
    assert decision.spec["holderIdentity"] == ME
    assert decision.spec["leaseTransitions"] == 4


def test_a_lease_without_spec_is_free() -> None:
    bare = {"metadata": {"name": "x", "resourceVersion": "1"}}
    decision = decide(bare, ME, T0, 15)
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.spec is not None
    assert decision.spec["leaseTransitions"] == 1


@pytest.mark.parametrize("renew", [None, "not a time"])
def test_a_holder_without_a_readable_renew_time_counts_as_expired(renew: str | None) -> None:
    odd = lease(OTHER, renewed=None)
    if renew is not None:
        odd["spec"]["renewTime"] = renew
    assert decide(odd, ME, T0, 15).action is LeaseAction.ACQUIRE


@pytest.mark.parametrize("transitions", [None, -1, "3", 2.5, False])
def test_bad_transition_counts_restart_from_zero(transitions: object) -> None:
    decision = decide(lease(OTHER, transitions=transitions), ME, T0 + timedelta(hours=1), 15)
    assert decision.spec is not None
    assert decision.spec["leaseTransitions"] == 1


def test_observation_time_overrides_a_skewed_renew_time() -> None:
    # The holder's clock runs an hour behind: its renewTime looks stale, yet we saw the
    # record change 5 s ago, so it is alive.
    skewed_behind = lease(OTHER, renewed=T0 - timedelta(hours=1))
    seen = T0 - timedelta(seconds=5)
    assert decide(skewed_behind, ME, T0, 15, observed_at=seen).action is LeaseAction.WAIT
    # The holder's clock runs ahead: renewTime looks fresh, but the record has not changed
    # for 15 s of our time, so it is dead.
    skewed_ahead = lease(OTHER, renewed=T0 + timedelta(hours=1))
    stale = T0 - timedelta(seconds=15)
    assert decide(skewed_ahead, ME, T0, 15, observed_at=stale).action is LeaseAction.ACQUIRE


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        decide(None, "", T0, 15)
    with pytest.raises(ValueError):
        decide(None, ME, datetime(2026, 1, 1), 15)
    with pytest.raises(ValueError):
        decide(None, ME, T0, 0)
    with pytest.raises(ValueError):
        release_spec(lease(ME), ME, datetime(2026, 1, 1))


def test_release_clears_the_holder_and_shortens_the_lease() -> None:
    now = T0 + timedelta(seconds=3)
    assert release_spec(lease(ME), ME, now) == {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": stamp(now),
        "renewTime": stamp(now),
        "leaseTransitions": 3,
    }


def test_release_of_a_lease_we_do_not_hold_is_nothing() -> None:
    assert release_spec(lease(OTHER), ME, T0) is None
    assert release_spec(lease(""), ME, T0) is None
    assert release_spec(None, ME, T0) is None
    assert release_spec(lease(""), "", T0) is None


def test_a_released_lease_is_taken_over_at_once() -> None:
    released = lease(ME)
    released["spec"] = release_spec(released, ME, T0)
    decision = decide(released, OTHER, T0, 15, observed_at=T0)
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.spec is not None
    assert decision.spec["holderIdentity"] == OTHER
    assert decision.spec["leaseTransitions"] == 4


def test_default_identities_are_unique() -> None:
    assert default_identity() != default_identity()


@given(
    holder=st.sampled_from(["", ME, OTHER, None]),
    renewed_offset=st.integers(min_value=-100, max_value=100),
    duration=st.integers(min_value=1, max_value=60),
    transitions=st.integers(min_value=0, max_value=10**6),
    exists=st.booleans(),
)
def test_any_write_makes_us_the_holder_at_now(
    holder: str | None, renewed_offset: int, duration: int, transitions: int, exists: bool
) -> None:
    current = (
        lease(
            holder,
            renewed=T0 + timedelta(seconds=renewed_offset),
            duration=duration,
            transitions=transitions,
        )
        if exists
        else None
    )
    decision = decide(current, ME, T0, 15)
    if decision.action is LeaseAction.WAIT:
        assert decision.spec is None
        assert holder == OTHER
        assert renewed_offset + duration > 0
        return
    assert decision.spec is not None
    assert decision.spec["holderIdentity"] == ME
    assert decision.spec["renewTime"] == stamp(T0)
    assert decision.spec["leaseDurationSeconds"] == 15
    if current is None:
        assert decision.spec["leaseTransitions"] == 0
    elif holder == ME:
        assert decision.spec["leaseTransitions"] == transitions
    else:
        assert decision.spec["leaseTransitions"] == transitions + 1


def leader_status() -> float | None:
    return REGISTRY.get_sample_value("registry_v2_policy_leader_election_status", {"lease": NAME})


def test_the_leader_gauge_is_one_exactly_while_leading() -> None:
    api = FakeLeaseApi()
    h = Harness(api)
    assert leader_status() == 0, "a follower exports 0, so an absent leader shows"
    seen: list[float | None] = []
    h.at(3, lambda: seen.append(leader_status()))
    h.stop_when_leading(4)
    h.run()
    assert seen == [1]
    assert leader_status() == 0


def test_the_leader_gauge_drops_when_the_lease_is_lost() -> None:
    api = FakeLeaseApi()
    h = Harness(api)
    seen: list[float | None] = []
    h.at(2, lambda: other_holds(api, h.wall))
    h.at(3, lambda: seen.append(leader_status()))
    h.at(4, h.stop.set)
    h.run()
    assert h.stopped and seen == [0]


def test_a_leader_whose_renewals_stall_past_the_lease_duration_is_unhealthy() -> None:
    """The elector loop itself wedged (here: its wait took 16 s): the kubelet must restart
    the pod, since another replica may take the Lease while this one still writes."""
    api = FakeLeaseApi()
    h = Harness(api)  # lease_duration 15 s, renew every 2 s
    assert h.elector.renewal_problem() is None, "a follower has no Lease to keep"
    seen: list[str | None] = []

    def wedge() -> None:
        seen.append(h.elector.renewal_problem())
        h.mono += 13  # the last renewal was 2 s ago: now 15 s, still within the duration
        seen.append(h.elector.renewal_problem())
        h.mono += 1
        seen.append(h.elector.renewal_problem())

    h.at(3, wedge)
    h.at(4, h.stop.set)
    h.run()
    assert seen == [
        None,
        None,
        f"leader of lease {NS}/{NAME} last renewed it 16s ago, past its 15s duration",
    ]
    assert h.elector.renewal_problem() is None, "stepped down: nothing to keep"
