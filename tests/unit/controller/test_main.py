"""run_elected: the reconcilers run only while this replica holds the Lease;
run_reconcilers: and the Event writer stops after them; reconciler_loops: which run."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest
from kubernetes import client

from controller.config import ControllerConfig, UpstreamRegistryConfig
from controller.main import (
    EVENTS_STOP_SECONDS,
    WEDGED_AFTER_SECONDS,
    health_checks,
    reconciler_loops,
    run_elected,
    run_reconcilers,
)
from controller.pullsecrets.api import REQUEST_TIMEOUT
from controller.pullsecrets.reconciler import PullSecretConfig
from controller.pullsecrets.wiring import PullSecretWiring
from controller.registrycerts.wiring import RegistryCertsWiring
from controller.registrytags.wiring import RegistryTagsWiring
from controller.rolebindings.wiring import RoleBindingWiring
from kube.health import failing
from kube.ratelimit import RateLimiter

DEADLINE = 10.0


class FakeLoop:
    """Counts as an API writer from ``run`` until it returns."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.may_return = threading.Event()  # held by a test to see who waits for us
        self.may_return.set()
        self.runs = 0
        self.running = False
        self.returned = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self.runs += 1
        self.running = True
        self.started.set()
        stop.wait()
        self.may_return.wait(DEADLINE)
        self.running = False
        self.returned.set()


class NeverGranted:
    """Another replica holds the Lease for as long as we wait."""

    def run(
        self,
        on_started_leading: Callable[[threading.Event], None],
        on_stopped_leading: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        stop.wait()


class GrantedThenLost:
    """Grants the Lease, then loses it once every loop is running, as LeaderElector does:
    ``lost`` is set, then ``on_stopped_leading`` is called."""

    def __init__(self, loops: list[FakeLoop]) -> None:
        self.loops = loops
        self.running_at_stopped: list[bool] = []
        self.term_ended_before_loops = False

    def run(
        self,
        on_started_leading: Callable[[threading.Event], None],
        on_stopped_leading: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        lost = threading.Event()
        term = threading.Thread(target=on_started_leading, args=(lost,))
        term.start()
        assert all(loop.started.wait(DEADLINE) for loop in self.loops)
        for loop in self.loops:
            loop.may_return.clear()
        lost.set()
        term.join(timeout=0.3)  # a term that does not wait for its loops ends at once
        self.term_ended_before_loops = not term.is_alive()
        for loop in self.loops:
            loop.may_return.set()
        term.join(DEADLINE)
        self.running_at_stopped = [loop.running for loop in self.loops]
        on_stopped_leading()


def test_without_the_lease_no_reconciler_runs() -> None:
    loops = [FakeLoop(), FakeLoop()]
    stop = threading.Event()
    result: list[bool] = []
    runner = threading.Thread(
        target=lambda: result.append(run_elected(loops, NeverGranted(), stop))
    )
    runner.start()
    stop.set()
    runner.join(DEADLINE)
    assert result == [False]
    assert [loop.runs for loop in loops] == [0, 0]


def test_losing_the_lease_stops_every_loop_before_reporting_it() -> None:
    loops = [FakeLoop(), FakeLoop()]
    elector = GrantedThenLost(loops)
    stop = threading.Event()
    assert run_elected(loops, elector, stop) is True
    assert stop.is_set(), "a replica that lost the Lease exits"
    assert [loop.runs for loop in loops] == [1, 1]
    assert not elector.term_ended_before_loops, "the term ended while loops still ran"
    assert elector.running_at_stopped == [False, False]


def test_without_leader_election_every_loop_runs_until_stop() -> None:
    loops = [FakeLoop(), FakeLoop()]
    stop = threading.Event()
    result: list[bool] = []
    runner = threading.Thread(target=lambda: result.append(run_elected(loops, None, stop)))
    runner.start()
    assert all(loop.started.wait(DEADLINE) for loop in loops)
    stop.set()
    runner.join(DEADLINE)
    assert result == [False]
    assert all(loop.returned.is_set() for loop in loops)


class Problem:
    """Stands in for the elector, a runner or an informer: reports a fixed state."""

    def __init__(self, problem: str | None = None, name: str = "x") -> None:
        self.problem = problem
        self.name = name
        self.bounds: list[float] = []

    def renewal_problem(self) -> str | None:
        return self.problem

    def progress_problem(self, bound: float) -> str | None:
        self.bounds.append(bound)
        return self.problem

    def has_synced(self) -> bool:
        return self.problem is None


def test_liveness_is_the_lease_and_every_runners_progress_and_readiness_the_caches() -> None:
    elector = Problem("lease stale")
    runners = [Problem(None), Problem("pull-secrets: wedged")]
    informers = [Problem(None, "a"), Problem("x", "b")]
    liveness, readiness = health_checks(elector, runners, informers)
    assert failing(liveness) == ["lease stale", "pull-secrets: wedged"]
    assert failing(readiness) == ["caches not synced: b"]
    assert [r.bounds for r in runners] == [[WEDGED_AFTER_SECONDS]] * 2


def test_without_leader_election_only_progress_counts() -> None:
    liveness, _ = health_checks(None, [Problem(None)], [])
    assert failing(liveness) == []


def test_the_wedge_bound_outlasts_any_reconcile_that_makes_progress() -> None:
    """A call that times out ends its reconcile; only many slow successes take longer."""
    assert WEDGED_AFTER_SECONDS >= 5 * REQUEST_TIMEOUT


class FakeEvents:
    """The Event writer: notes whether any loop still ran when it was stopped."""

    def __init__(self, loops: list[FakeLoop]) -> None:
        self.loops = loops
        self.stops: list[tuple[float, list[bool]]] = []

    def stop(self, timeout: float) -> None:
        self.stops.append((timeout, [loop.running for loop in self.loops]))


def test_the_event_writer_stops_once_every_loop_has_returned() -> None:
    loops = [FakeLoop(), FakeLoop()]
    events = FakeEvents(loops)
    stop = threading.Event()
    result: list[bool] = []
    runner = threading.Thread(
        target=lambda: result.append(run_reconcilers(loops, None, stop, events)), daemon=True
    )
    runner.start()
    try:
        assert all(loop.started.wait(DEADLINE) for loop in loops)
        assert events.stops == [], "the writer runs while the reconcilers do"
    finally:
        stop.set()
        runner.join(DEADLINE)
    assert result == [False]
    assert events.stops == [(EVENTS_STOP_SECONDS, [False, False])]


def test_the_event_writer_stops_when_the_lease_is_lost_too() -> None:
    loops = [FakeLoop(), FakeLoop()]
    events = FakeEvents(loops)
    assert run_reconcilers(loops, GrantedThenLost(loops), threading.Event(), events) is True
    assert events.stops == [(EVENTS_STOP_SECONDS, [False, False])]


class NoEvents:
    def record(self, *args: object, **kwargs: object) -> None: ...


@pytest.mark.parametrize(
    ("upstream", "tags_kept"), [(None, False), ("https://image-registry-upstream:5000", True)]
)
def test_the_registrys_tags_are_reconciled_only_with_an_upstream_to_keep(
    upstream: str | None, tags_kept: bool
) -> None:
    config = ControllerConfig(
        namespace="image-registry-system",
        pull_secrets=PullSecretConfig((), (), frozenset(), 3600),
        certificates=None,
        upstream=None if upstream is None else UpstreamRegistryConfig(upstream),
    )
    loops = reconciler_loops(client.ApiClient(), config, RateLimiter(1, 1), NoEvents())
    kept = [loop for loop in loops if isinstance(loop, RegistryTagsWiring)]
    assert len(loops) == 3 + tags_kept  # pull secrets, quota usage, default rolebindings
    assert bool(kept) is tags_kept
    if kept:
        assert kept[0].registry.origin == upstream


def test_the_nodes_trust_the_hostnames_the_pull_secrets_name_with_node_ca_only() -> None:
    config = ControllerConfig(
        node_ca_namespace="image-registry-node-ca",
        namespace="image-registry-system",
        pull_secrets=PullSecretConfig(
            ("internal.svc:5000",), ("extra.example:443",), frozenset(), 3600
        ),
        certificates=None,
    )
    loops = reconciler_loops(client.ApiClient(), config, RateLimiter(1, 1), NoEvents())
    [certs] = [loop for loop in loops if isinstance(loop, RegistryCertsWiring)]
    assert certs.hostnames() == ["internal.svc:5000", "extra.example:443"]
    assert certs.reconciler.key == "image-registry-node-ca/image-registry-certificates"
    without = reconciler_loops(
        client.ApiClient(),
        dataclasses.replace(config, node_ca_namespace=None),
        RateLimiter(1, 1),
        NoEvents(),
    )
    assert not [loop for loop in without if isinstance(loop, RegistryCertsWiring)]


def test_the_default_rolebindings_are_kept_in_the_pull_secrets_namespaces() -> None:
    excluded = frozenset({"image-registry-system", "kube-system", "other"})
    config = ControllerConfig(
        namespace="image-registry-system",
        pull_secrets=PullSecretConfig((), (), excluded, 3600),
        certificates=None,
    )
    loops = reconciler_loops(client.ApiClient(), config, RateLimiter(1, 1), NoEvents())
    [bindings] = [loop for loop in loops if isinstance(loop, RoleBindingWiring)]
    assert [ns for ns in ("team-a", *excluded) if bindings.reconciler.managed(ns)] == ["team-a"]


def test_the_builder_accounts_are_read_from_the_pull_secrets_serviceaccount_cache() -> None:
    config = ControllerConfig(
        namespace="image-registry-system",
        pull_secrets=PullSecretConfig((), (), frozenset(), 3600),
        certificates=None,
    )
    loops = reconciler_loops(client.ApiClient(), config, RateLimiter(1, 1), NoEvents())
    [bindings] = [loop for loop in loops if isinstance(loop, RoleBindingWiring)]
    [secrets] = [loop for loop in loops if isinstance(loop, PullSecretWiring)]
    assert bindings.serviceaccounts is secrets.serviceaccounts
    started = [i for loop in loops for i in loop.informers if i is secrets.serviceaccounts]
    assert len(started) == 1  # one watch of every ServiceAccount, started once
