"""KeyedLocks: mutual exclusion per key, and nothing kept for a key nobody holds or awaits."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

from kube.keyedlocks import KeyedLocks
from localcluster.waiting import wait_for

DEADLINE = 30.0
"""Seconds a test thread may take at most; far above what any of them needs."""


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as CPython allows, so a race shows within a few rounds."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_a_key_is_forgotten_once_released() -> None:
    locks = KeyedLocks()
    assert locks.acquire("a", timeout=DEADLINE)
    assert len(locks) == 1
    locks.release("a")
    assert len(locks) == 0


def test_a_thousand_keys_leave_nothing_behind() -> None:
    locks = KeyedLocks()
    for n in range(1000):
        assert locks.acquire(f"ns-{n}", timeout=DEADLINE)
        locks.release(f"ns-{n}")
    assert len(locks) == 0


def test_a_held_key_blocks_a_second_holder_until_released() -> None:
    locks = KeyedLocks()
    assert locks.acquire("a", timeout=DEADLINE)
    assert locks.acquire("a", timeout=0) is False
    assert locks.acquire("b", timeout=0) is True, "other keys are independent"
    locks.release("b")
    locks.release("a")
    assert locks.acquire("a", timeout=0) is True
    locks.release("a")


def test_a_timed_out_waiter_leaves_no_entry_of_its_own() -> None:
    locks = KeyedLocks()
    assert locks.acquire("a", timeout=DEADLINE)
    assert locks.acquire("a", timeout=0.01) is False
    locks.release("a")
    assert len(locks) == 0


def test_a_waiter_keeps_the_key_and_gets_the_same_lock() -> None:
    """The holder releasing while another waits must not drop the entry: a third thread
    arriving then would get a fresh lock and hold the key together with the waiter."""
    locks = KeyedLocks()
    assert locks.acquire("a", timeout=DEADLINE)
    got = threading.Event()
    done = threading.Event()

    def waiter() -> None:
        if locks.acquire("a", timeout=DEADLINE):
            got.set()
            done.wait(DEADLINE)
            locks.release("a")

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    wait_for(  # the holder and the waiter
        lambda: locks.users("a") >= 2, timeout=DEADLINE, interval=0.001, what="the waiter to queue"
    )
    locks.release("a")
    assert got.wait(DEADLINE)
    assert locks.acquire("a", timeout=0) is False, "a newcomer must queue behind the waiter"
    done.set()
    thread.join(DEADLINE)
    assert len(locks) == 0


@pytest.mark.usefixtures("busy_switching")
def test_concurrent_holders_of_one_key_are_never_two() -> None:
    """Many threads over few keys: whoever holds a key finds itself alone in it."""
    locks = KeyedLocks()
    keys = ["a", "b", "c"]
    holder: dict[str, int | None] = dict.fromkeys(keys)
    overlaps: list[str] = []
    start = threading.Barrier(12)

    def worker(n: int) -> None:
        start.wait(DEADLINE)
        me = threading.get_ident()
        for round_ in range(300):
            key = keys[(n + round_) % len(keys)]
            assert locks.acquire(key, timeout=DEADLINE)
            try:
                if holder[key] is not None:
                    overlaps.append(key)
                holder[key] = me
                time.sleep(0)  # hand the GIL over while holding the key
                if holder[key] != me:
                    overlaps.append(key)
                holder[key] = None
            finally:
                locks.release(key)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    assert overlaps == []
    assert len(locks) == 0


def test_releasing_a_key_not_held_is_an_error() -> None:
    locks = KeyedLocks()
    with pytest.raises(RuntimeError):
        locks.release("a")
    assert len(locks) == 0
