"""BatchQueues: one batch per key at a time, what queued meanwhile is the next batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

import pytest

from serving.chargequeue import BatchQueues, TakeMore, Waiter

DEADLINE = 30.0
HELD = 3.0
"""Seconds a test holds a batch that should not be waited for (a failure, not a hang)."""


class Recorder:
    """Answers each item with itself doubled; the first batch waits until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.running = 0
        self.overlapped = False
        self.started, self.release = threading.Event(), threading.Event()
        self._lock = threading.Lock()

    def __call__(self, key: Hashable, waiters: list[Waiter[int, int]], more: object) -> None:
        with self._lock:
            self.running += 1
            self.overlapped |= self.running > 1
            self.batches.append([w.item for w in waiters])
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(DEADLINE)
        for waiter in waiters:
            waiter.answer = waiter.item * 2
        with self._lock:
            self.running -= 1


def queues(run: Recorder) -> BatchQueues[int, int]:
    return BatchQueues(run, lambda key: TimeoutError(f"queued too long in {key}"))


def until(condition: object) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.001)


def test_a_lone_item_runs_at_once_as_a_batch_of_one() -> None:
    run = Recorder()
    run.release.set()
    assert queues(run).submit("ns", 21, time.monotonic() + DEADLINE) == 42
    assert run.batches == [[21]]


def test_items_queued_while_a_batch_runs_are_the_next_batch_and_each_gets_its_answer() -> None:
    run = Recorder()
    made = queues(run)
    answers: dict[int, int] = {}

    def submit(item: int) -> None:
        answers[item] = made.submit("ns", item, time.monotonic() + DEADLINE)

    first = threading.Thread(target=submit, args=(1,))
    first.start()
    assert run.started.wait(DEADLINE)
    others = [threading.Thread(target=submit, args=(n,)) for n in (2, 3, 4)]
    for thread in others:
        thread.start()
    until(lambda: made.queued("ns") == 3)
    run.release.set()
    for thread in [first, *others]:
        thread.join(DEADLINE)
    assert answers == {1: 2, 2: 4, 3: 6, 4: 8}
    assert run.batches[0] == [1] and sorted(run.batches[1]) == [2, 3, 4]
    assert not run.overlapped, "two batches of one key ran at once"
    assert len(made) == 0


def test_keys_do_not_wait_for_each_other() -> None:
    run = Recorder()
    made = queues(run)
    first = threading.Thread(target=made.submit, args=("a", 1, time.monotonic() + DEADLINE))
    first.start()
    assert run.started.wait(DEADLINE)
    assert made.submit("b", 5, time.monotonic() + DEADLINE) == 10  # while "a" is held
    run.release.set()
    first.join(DEADLINE)


def test_a_waiter_still_queued_at_its_deadline_leaves_the_queue_and_is_told_so() -> None:
    run = Recorder()
    made = queues(run)
    first = threading.Thread(target=made.submit, args=("ns", 1, time.monotonic() + DEADLINE))
    first.start()
    assert run.started.wait(DEADLINE)
    with pytest.raises(TimeoutError, match="queued too long in ns"):
        made.submit("ns", 2, time.monotonic() + 0.05)
    assert made.queued("ns") == 0
    run.release.set()
    first.join(DEADLINE)
    assert run.batches == [[1]] and len(made) == 0


def test_a_runner_that_raises_answers_its_whole_batch_with_the_error() -> None:
    def broken(key: Hashable, waiters: list[Waiter[int, int]], more: object) -> None:
        raise RuntimeError("bug")

    made: BatchQueues[int, int] = BatchQueues(broken, lambda key: TimeoutError())
    with pytest.raises(RuntimeError, match="bug"):
        made.submit("ns", 1, time.monotonic() + DEADLINE)
    assert len(made) == 0


def test_a_waiter_taken_into_a_running_batch_is_answered_by_it_past_its_deadline() -> None:
    """Its deadline passes while the batch that took it (on a retry) still runs: the batch
    answers it; it neither leaves a queue it is no longer in nor gives up."""
    queued, taken = threading.Event(), threading.Event()
    late = time.monotonic() + 0.2

    def run(key: Hashable, waiters: list[Waiter[int, int]], more: TakeMore[int, int]) -> None:
        if waiters[0].item == 1:
            assert queued.wait(DEADLINE)
            until(lambda: made.queued("ns") == 1)
            waiters.extend(more())
            taken.set()
            until(lambda: time.monotonic() > late + 0.05)  # the taken waiter's deadline passed
        for waiter in waiters:
            waiter.answer = waiter.item * 2

    made: BatchQueues[int, int] = BatchQueues(run, lambda key: TimeoutError("gave up"))
    first = threading.Thread(target=made.submit, args=("ns", 1, time.monotonic() + DEADLINE))
    first.start()
    until(lambda: len(made) == 1)
    queued.set()
    assert made.submit("ns", 2, late) == 4
    assert taken.is_set()
    first.join(DEADLINE)
    assert len(made) == 0


def test_a_waiter_is_woken_as_soon_as_its_batch_answers_it_not_when_the_batch_ends() -> None:
    """A batch whose later calls take until another waiter's deadline must not hold an
    answer it already has: the API server would give up on that request meanwhile."""
    release, ended = threading.Event(), threading.Event()

    def run(key: Hashable, waiters: list[Waiter[int, int]], more: TakeMore[int, int]) -> None:
        until(lambda: made.queued("ns") == 1)
        for waiter in more():  # taken into this batch, answered at once
            waiter.answer = waiter.item * 2
            made.done(waiter)
        release.wait(HELD)  # the rest of the batch still runs (a slow call)
        for waiter in waiters:
            waiter.answer = waiter.item * 2
        ended.set()

    made: BatchQueues[int, int] = BatchQueues(run, lambda key: TimeoutError("gave up"))
    first = threading.Thread(target=made.submit, args=("ns", 1, time.monotonic() + DEADLINE))
    first.start()
    try:
        until(lambda: len(made) == 1)
        answer = made.submit("ns", 2, time.monotonic() + DEADLINE)
        held = not ended.is_set()
    finally:
        release.set()  # without ``done``, the submit above returned only after this
        first.join(DEADLINE)
    assert answer == 4
    assert held, "answered only when the whole batch ended"
    assert len(made) == 0


class ManualClock:
    """Monotonic time that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_waiter_past_its_deadline_is_not_given_the_lead() -> None:
    """Its thread would run the next batch for the others, holding its own request (which
    the API server gave up on) until theirs end; it is refused and the next one leads."""
    clock = ManualClock()
    started, release = threading.Event(), threading.Event()
    leaders: list[tuple[list[int], str]] = []

    def run(key: Hashable, waiters: list[Waiter[int, int]], more: TakeMore[int, int]) -> None:
        leaders.append(([w.item for w in waiters], threading.current_thread().name))
        if not started.is_set():
            started.set()
            assert release.wait(DEADLINE)
        for waiter in waiters:
            waiter.answer = waiter.item * 2

    made: BatchQueues[int, int] = BatchQueues(run, lambda key: TimeoutError("gave up"), clock=clock)
    results: dict[int, int | BaseException] = {}

    def submit(item: int, end: float) -> None:
        try:
            results[item] = made.submit("ns", item, end)
        except BaseException as err:
            results[item] = err

    threads = [
        threading.Thread(target=submit, args=(item, end), name=f"waiter-{item}")
        for item, end in ((1, 200.0), (2, 105.0), (3, 200.0))
    ]
    threads[0].start()
    assert started.wait(DEADLINE)
    for count, thread in enumerate(threads[1:], 1):
        thread.start()
        until(lambda count=count: made.queued("ns") == count)
    clock.now = 106.0  # waiter 2's deadline passed while it was queued, unnoticed yet
    release.set()
    for thread in threads:
        thread.join(DEADLINE)
    assert isinstance(results[2], TimeoutError)
    assert results[1] == 2 and results[3] == 6
    assert leaders == [([1], "waiter-1"), ([3], "waiter-3")]
    assert len(made) == 0
