import threading
import time
from collections.abc import Hashable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from kube.workqueue import WorkQueue


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def drain(queue: WorkQueue) -> list[Hashable]:
    """Every key available now, each marked done at once."""
    keys = []
    while (key := queue.get(timeout=0)) is not None:
        keys.append(key)
        queue.done(key)
    return keys


def test_keys_come_out_in_order_and_once() -> None:
    queue = WorkQueue()
    for key in ["a/1", "b/2", "a/1", "c/3", "b/2"]:
        queue.add(key)
    assert len(queue) == 3
    assert drain(queue) == ["a/1", "b/2", "c/3"]
    assert len(queue) == 0


def test_key_added_while_processing_waits_for_done() -> None:
    queue = WorkQueue()
    queue.add("ns/a")
    assert queue.get(timeout=0) == "ns/a"
    queue.add("ns/a")
    queue.add("ns/a")
    # Not handed to a second worker while the first holds it.
    assert len(queue) == 0
    assert queue.get(timeout=0) is None
    queue.done("ns/a")
    assert len(queue) == 1
    assert queue.get(timeout=0) == "ns/a"
    queue.done("ns/a")
    assert queue.get(timeout=0) is None


def test_done_without_a_new_add_does_not_requeue() -> None:
    queue = WorkQueue()
    queue.add("k")
    assert queue.get(timeout=0) == "k"
    queue.done("k")
    queue.done("k")  # a stray second done is harmless
    assert len(queue) == 0
    assert queue.get(timeout=0) is None


def test_get_times_out_with_none() -> None:
    queue = WorkQueue()
    started = time.monotonic()
    assert queue.get(timeout=0.02) is None
    assert time.monotonic() - started >= 0.02


def test_blocked_get_returns_a_key_added_by_another_thread() -> None:
    queue = WorkQueue()
    results: list[Hashable | None] = []
    getter = threading.Thread(target=lambda: results.append(queue.get(timeout=10)))
    getter.start()
    queue.add("late")
    getter.join(timeout=10)
    assert not getter.is_alive()
    assert results == ["late"]


def test_shutdown_wakes_every_blocked_getter() -> None:
    queue = WorkQueue()
    results: list[Hashable | None] = []
    getters = [threading.Thread(target=lambda: results.append(queue.get())) for _ in range(3)]
    for getter in getters:
        getter.start()
    assert not queue.shutting_down
    queue.shutdown()
    for getter in getters:
        getter.join(timeout=10)
        assert not getter.is_alive()
    assert results == [None, None, None]
    assert queue.shutting_down


def test_after_shutdown_nothing_is_handed_out_or_accepted() -> None:
    queue = WorkQueue()
    queue.add("waiting")
    queue.add("busy")
    assert queue.get(timeout=0) == "waiting"
    queue.add("waiting")  # dirty while processing
    queue.shutdown()
    assert queue.get(timeout=0) is None
    assert queue.get() is None  # no timeout: still returns at once
    queue.add("new")
    queue.add_after("later", 1)
    queue.add_rate_limited("retry")
    queue.done("waiting")  # would requeue without shutdown
    assert queue.get(timeout=0) is None


def test_add_after_waits_for_the_injected_clock() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(monotonic=clock)
    queue.add_after("k", 5)
    assert len(queue) == 0
    assert queue.get(timeout=0) is None
    clock.advance(4.999)
    assert queue.get(timeout=0) is None
    clock.advance(0.001)
    assert len(queue) == 1
    assert queue.get(timeout=0) == "k"


def test_add_after_without_delay_adds_now() -> None:
    queue = WorkQueue(monotonic=FakeMonotonic())
    queue.add_after("zero", 0)
    queue.add_after("negative", -3)
    assert drain(queue) == ["zero", "negative"]


def test_earliest_deadline_wins_and_the_later_one_is_dropped() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(monotonic=clock)
    queue.add_after("k", 10)
    queue.add_after("k", 2)
    queue.add_after("k", 7)  # later than the pending 2: ignored
    clock.advance(2)
    assert drain(queue) == ["k"]
    clock.advance(100)
    assert drain(queue) == []


def test_delayed_key_already_waiting_is_not_duplicated() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(monotonic=clock)
    queue.add("k")
    queue.add_after("k", 1)
    clock.advance(1)
    assert len(queue) == 1
    assert drain(queue) == ["k"]


def test_delayed_keys_come_out_in_deadline_order() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(monotonic=clock)
    queue.add_after("c", 3)
    queue.add_after("a", 1)
    queue.add_after("b", 2)
    clock.advance(5)
    assert drain(queue) == ["a", "b", "c"]


def test_blocked_get_wakes_when_a_delayed_key_falls_due() -> None:
    queue = WorkQueue()  # real clock: the getter must wake by itself
    results: list[Hashable | None] = []
    getter = threading.Thread(target=lambda: results.append(queue.get(timeout=10)))
    getter.start()
    started = time.monotonic()
    queue.add_after("soon", 0.05)
    getter.join(timeout=10)
    assert results == ["soon"]
    elapsed = time.monotonic() - started
    assert 0.05 <= elapsed < 10


def test_rate_limited_backoff_doubles_from_base_to_cap() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(base_delay=1.0, max_delay=5.0, monotonic=clock)
    for expected_delay, requeues in [(1.0, 1), (2.0, 2), (4.0, 3), (5.0, 4), (5.0, 5)]:
        queue.add_rate_limited("k")
        assert queue.num_requeues("k") == requeues
        clock.advance(expected_delay - 0.001)
        assert queue.get(timeout=0) is None, expected_delay
        clock.advance(0.001)
        assert queue.get(timeout=0) == "k"
        queue.done("k")


def test_default_backoff_starts_at_fifty_milliseconds() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(monotonic=clock)
    queue.add_rate_limited("k")
    clock.advance(0.049)
    assert len(queue) == 0
    clock.advance(0.001)
    assert len(queue) == 1


def test_forget_resets_the_backoff_per_key() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(base_delay=1.0, max_delay=60.0, monotonic=clock)
    for _ in range(3):
        queue.add_rate_limited("a")
    queue.add_rate_limited("b")
    assert (queue.num_requeues("a"), queue.num_requeues("b"), queue.num_requeues("c")) == (3, 1, 0)
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    assert queue.num_requeues("b") == 1
    clock.advance(1)
    assert drain(queue) == ["a", "b"]
    queue.add_rate_limited("a")  # back to the base delay
    clock.advance(1)
    assert drain(queue) == ["a"]


def test_many_failures_stay_at_the_cap_without_overflow() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(base_delay=0.05, max_delay=60.0, monotonic=clock)
    for _ in range(1500):
        queue.add_rate_limited("k")
    assert queue.num_requeues("k") == 1500
    assert drain(queue) == []
    clock.advance(0.05)
    assert drain(queue) == ["k"]  # the first, earliest deadline
    queue.add_rate_limited("k")
    clock.advance(59.999)
    assert drain(queue) == []
    clock.advance(0.001)
    assert drain(queue) == ["k"]


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_invalid_backoff_is_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        WorkQueue(base_delay=base, max_delay=cap)


def test_len_counts_only_waiting_keys() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(monotonic=clock)
    queue.add("busy")
    assert queue.get(timeout=0) == "busy"
    queue.add("waiting")
    queue.add_after("delayed", 1)
    assert len(queue) == 1


def test_no_key_is_processed_by_two_workers_at_once() -> None:
    queue = WorkQueue()
    keys = [f"ns/{i}" for i in range(5)]
    lock = threading.Lock()
    active: set[Hashable] = set()
    overlaps: list[Hashable] = []
    processed: set[Hashable] = set()
    rounds = [0]

    def work() -> None:
        while (key := queue.get(timeout=10)) is not None:
            with lock:
                if key in active:
                    overlaps.append(key)
                active.add(key)
                processed.add(key)
                rounds[0] += 1
                enough = rounds[0] >= 2000
            # Re-adds while we hold the key exercise the dirty path.
            queue.add(key)
            with lock:
                active.discard(key)
            queue.done(key)
            if enough:
                queue.shutdown()

    workers = [threading.Thread(target=work) for _ in range(8)]
    for key in keys:
        queue.add(key)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert not worker.is_alive()
    assert overlaps == []
    assert set(processed) == set(keys)


@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "get", "done"]), st.sampled_from(["a", "b", "c"])),
        max_size=60,
    )
)
def test_every_added_key_is_handed_out_after_its_last_add(ops: list[tuple[str, str]]) -> None:
    queue = WorkQueue()
    processing: set[Hashable] = set()
    pending: set[Hashable] = set()  # added since last handed out
    for op, key in ops:
        if op == "add":
            queue.add(key)
            pending.add(key)
        elif op == "get":
            got = queue.get(timeout=0)
            if got is not None:
                assert got not in processing
                processing.add(got)
                pending.discard(got)
        elif key in processing:
            queue.done(key)
            processing.discard(key)
        # Each key waits at most once.
        assert len(queue) <= len(pending)
    for held in list(processing):
        queue.done(held)
    assert set(drain(queue)) == pending


_BASELINE: dict[tuple[str, str], float] = {}


@pytest.fixture(autouse=True)
def _queue_metrics_baseline() -> None:
    """The metrics are process-wide and mutmut runs pytest twice in one process: a test
    reads them relative to where they stood when it started."""
    _BASELINE.clear()
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name.startswith("registry_v2_policy_workqueue_"):
                _BASELINE[(sample.name, sample.labels.get("name", ""))] = sample.value


def queue_sample(metric: str, queue: str) -> float:
    value = REGISTRY.get_sample_value(metric, {"name": queue}) or 0.0
    return value - _BASELINE.get((metric, queue), 0.0)


def test_depth_queue_time_and_retries_are_exported_under_the_queue_name() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(name="wq-metrics", monotonic=clock)
    depth = "registry_v2_policy_workqueue_depth"
    waited = "registry_v2_policy_workqueue_queue_duration_seconds"
    queue.add("a")
    clock.advance(1.0)
    queue.add("b")
    assert queue_sample(depth, "wq-metrics") == 2
    clock.advance(3.0)
    assert queue.get(timeout=0) == "a"
    assert queue_sample(depth, "wq-metrics") == 1
    assert queue_sample(f"{waited}_count", "wq-metrics") == 1
    assert queue_sample(f"{waited}_sum", "wq-metrics") == 4.0
    assert queue.get(timeout=0) == "b"
    assert queue_sample(f"{waited}_sum", "wq-metrics") == 7.0
    assert queue_sample(depth, "wq-metrics") == 0

    queue.add_rate_limited("a")
    queue.add_rate_limited("a")
    assert queue_sample("registry_v2_policy_workqueue_retries_total", "wq-metrics") == 2


def test_a_delayed_key_waits_in_the_queue_from_when_it_falls_due() -> None:
    """Its delay was asked for; only the time it then waits for a worker is queue time."""
    clock = FakeMonotonic()
    queue = WorkQueue(name="wq-delayed", monotonic=clock)
    queue.add_after("a", 10.0)
    clock.advance(10.0)
    assert len(queue) == 1
    assert queue_sample("registry_v2_policy_workqueue_depth", "wq-delayed") == 1
    clock.advance(0.5)
    assert queue.get(timeout=0) == "a"
    total = "registry_v2_policy_workqueue_queue_duration_seconds_sum"
    assert queue_sample(total, "wq-delayed") == 0.5


def test_a_key_added_back_while_processing_is_timed_from_done() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(name="wq-dirty", monotonic=clock)
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.add("a")
    clock.advance(5.0)
    queue.done("a")
    clock.advance(1.0)
    assert queue.get(timeout=0) == "a"
    total = "registry_v2_policy_workqueue_queue_duration_seconds_sum"
    assert queue_sample(total, "wq-dirty") == 1.0


def test_a_named_queues_series_exist_before_any_key() -> None:
    """A quiet queue shows zeros, not nothing: absent series break rate() alerts."""
    WorkQueue(name="wq-quiet")
    assert (
        REGISTRY.get_sample_value("registry_v2_policy_workqueue_depth", {"name": "wq-quiet"}) == 0
    )
    for series in (
        "registry_v2_policy_workqueue_retries_total",
        "registry_v2_policy_workqueue_queue_duration_seconds_count",
    ):
        assert REGISTRY.get_sample_value(series, {"name": "wq-quiet"}) == 0


def test_the_oldest_wait_is_of_the_key_waiting_longest_for_a_worker() -> None:
    clock = FakeMonotonic()
    queue = WorkQueue(monotonic=clock)
    assert queue.oldest_wait() == 0.0
    queue.add("a")
    clock.advance(5.0)
    queue.add("b")
    clock.advance(2.0)
    assert queue.oldest_wait() == 7.0
    assert queue.get(timeout=0) == "a"
    assert queue.oldest_wait() == 2.0
    queue.add_after("c", 100.0)
    assert queue.get(timeout=0) == "b"
    assert queue.oldest_wait() == 0.0, "a delayed key is not waiting for a worker"
