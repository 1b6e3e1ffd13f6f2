"""Runner: what each reconcile outcome does to the queue, and workers joined on stop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

import pytest
from prometheus_client import REGISTRY

from kube.requeue import Requeue
from kube.runner import Runner
from kube.workqueue import WorkQueue

DEADLINE = 10.0


class RecordingQueue:
    """Hands out the given keys once, then sets ``stop``; records what the runner asks."""

    def __init__(self, keys: list[str], stop: threading.Event) -> None:
        self._keys = list(keys)
        self._stop = stop
        self._lock = threading.Lock()
        self.calls: list[tuple[str, Hashable, float | None]] = []

    def _note(self, call: str, key: Hashable, value: float | None = None) -> None:
        with self._lock:
            self.calls.append((call, key, value))

    def get(self, timeout: float | None = None) -> Hashable | None:
        with self._lock:
            if self._keys:
                return self._keys.pop(0)
        self._stop.set()
        return None

    def done(self, key: Hashable) -> None:
        self._note("done", key)

    def forget(self, key: Hashable) -> None:
        self._note("forget", key)

    def add_after(self, key: Hashable, delay: float) -> None:
        self._note("add_after", key, delay)

    def add_rate_limited(self, key: Hashable) -> None:
        self._note("add_rate_limited", key)

    def num_requeues(self, key: Hashable) -> int:
        return 0

    def oldest_wait(self) -> float:
        return 0.0

    def __len__(self) -> int:
        return len(self._keys)


def run_once(reconcile: Callable[[str], float | None]) -> RecordingQueue:
    stop = threading.Event()
    queue = RecordingQueue(["ns/a"], stop)
    runner = Runner("test", queue, reconcile, workers=1, progress_every=3600)
    runner.start(stop)
    assert stop.wait(DEADLINE)
    runner.join()
    return queue


@pytest.mark.parametrize(("returned", "delay"), [(7.5, 7.5), (0.0, 0.0), (-3.0, 0.0)])
def test_the_requeue_delay_a_reconcile_returns_is_scheduled(returned: float, delay: float) -> None:
    queue = run_once(lambda key: returned)
    assert queue.calls == [
        ("forget", "ns/a", None),
        ("add_after", "ns/a", delay),
        ("done", "ns/a", None),
    ]


def test_no_delay_means_no_requeue() -> None:
    queue = run_once(lambda key: None)
    assert queue.calls == [("forget", "ns/a", None), ("done", "ns/a", None)]


def test_a_requeue_backs_off_without_counting_as_a_failure() -> None:
    def conflict(key: str) -> float | None:
        raise Requeue("changed meanwhile")

    queue = run_once(conflict)
    assert queue.calls == [("add_rate_limited", "ns/a", None), ("done", "ns/a", None)]


def test_a_failure_backs_off_and_is_counted() -> None:
    def broken(key: str) -> float | None:
        raise RuntimeError("boom")

    stop = threading.Event()
    queue = RecordingQueue(["ns/a"], stop)
    runner = Runner("test", queue, broken, workers=1, progress_every=3600)
    runner.start(stop)
    assert stop.wait(DEADLINE)
    runner.join()
    assert queue.calls == [("add_rate_limited", "ns/a", None), ("done", "ns/a", None)]
    assert (runner.reconciled, runner.failed) == (0, 1)


def test_join_returns_only_after_the_key_in_hand_is_finished() -> None:
    """A leader that lost its Lease must not be writing once its loop has returned."""
    entered, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow(key: str) -> float | None:
        entered.set()
        release.wait(DEADLINE)
        finished.append(key)
        return None

    queue = WorkQueue()
    queue.add("ns/a")
    stop = threading.Event()
    runner = Runner("test", queue, slow, workers=2, progress_every=3600)
    runner.start(stop)
    assert entered.wait(DEADLINE)
    stop.set()
    joined = threading.Thread(target=runner.join)
    joined.start()
    joined.join(timeout=0.3)  # a join that does not wait returns at once
    still_waiting = joined.is_alive()
    release.set()
    joined.join(DEADLINE)
    assert still_waiting, "join returned while a worker still held its key"
    assert finished == ["ns/a"]
    assert not joined.is_alive()


def test_each_reconcile_is_timed_per_controller_failures_too() -> None:
    clock = [100.0]

    def slow(key: str) -> float | None:
        clock[0] += 2.5
        if key == "ns/b":
            raise RuntimeError("boom")
        return None

    stop = threading.Event()
    queue = RecordingQueue(["ns/a", "ns/b"], stop)
    runner = Runner(
        "timed", queue, slow, workers=1, progress_every=3600, monotonic=lambda: clock[0]
    )
    labels = {"controller": "timed"}
    histogram = "registry_v2_policy_reconcile_duration_seconds"
    names = (f"{histogram}_count", f"{histogram}_sum", "registry_v2_policy_reconcile_errors_total")

    def samples() -> list[float]:
        return [REGISTRY.get_sample_value(name, labels) or 0.0 for name in names]

    before = samples()  # the metrics are process-wide: mutmut runs pytest twice
    runner.start(stop)
    assert stop.wait(DEADLINE)
    runner.join()
    assert [a - b for a, b in zip(samples(), before, strict=True)] == [2, 5.0, 1]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


BOUND = 300.0


def test_a_reconcile_running_past_the_bound_is_a_wedged_worker() -> None:
    clock = Clock()
    entered, release = threading.Event(), threading.Event()

    def wedged(key: str) -> float | None:
        entered.set()
        release.wait(DEADLINE)
        return None

    queue = WorkQueue(monotonic=clock)
    queue.add("ns/a")
    stop = threading.Event()
    runner = Runner("wedge", queue, wedged, workers=1, progress_every=3600, monotonic=clock)
    assert runner.progress_problem(BOUND) is None, "not started: nothing to judge"
    runner.start(stop)
    try:
        assert entered.wait(DEADLINE)
        clock.now += BOUND
        assert runner.progress_problem(BOUND) is None
        clock.now += 1
        assert runner.progress_problem(BOUND) == "wedge: a reconcile has run for 301s"
    finally:
        release.set()
        stop.set()
        runner.join()
    assert runner.progress_problem(BOUND) is None, "stopped: nothing to judge"


def test_keys_waiting_with_no_reconcile_finishing_is_a_stall() -> None:
    """No worker takes keys (here: none left): the queue waits and nothing finishes."""
    clock = Clock()
    queue = WorkQueue(monotonic=clock)
    stop = threading.Event()
    runner = Runner("stalled", queue, lambda key: None, workers=0, monotonic=clock)
    runner.start(stop)
    try:
        clock.now += 10 * BOUND  # idle for long: no keys, no problem
        assert runner.progress_problem(BOUND) is None
        queue.add("ns/a")
        assert runner.progress_problem(BOUND) is None, "a key just added is no stall"
        clock.now += BOUND + 1
        assert runner.progress_problem(BOUND) == (
            "stalled: keys waiting for 301s and no reconcile finished for 3301s"
        )
    finally:
        stop.set()
        runner.join()


def test_a_long_backlog_that_drains_is_no_stall() -> None:
    """Keys may wait far past the bound behind a backlog, while every reconcile is quick."""
    clock = Clock()
    queue = WorkQueue(monotonic=clock)
    for i in range(10):
        queue.add(f"ns/{i}")
    stop = threading.Event()
    problems: list[str | None] = []
    oldest: list[float] = []

    def busy(key: str) -> float | None:
        problems.append(runner.progress_problem(BOUND))
        oldest.append(queue.oldest_wait())
        clock.now += BOUND / 3
        if key == "ns/9":
            stop.set()
        return None

    runner = Runner("backlog", queue, busy, workers=1, progress_every=3600, monotonic=clock)
    runner.start(stop)
    assert stop.wait(DEADLINE)
    runner.join()
    assert max(oldest) > BOUND, "the scenario must make keys wait past the bound"
    assert problems == [None] * 10
