import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kube.ratelimit import KeyedRateLimiter, RateLimiter


class FakeTime:
    """A clock plus a sleep that records and, if ``advance`` is set, moves the clock."""

    def __init__(self, advance: bool = True) -> None:
        self.now = 50.0
        self.advance = advance
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.now += seconds


def limiter(fake: FakeTime, qps: float, burst: int) -> RateLimiter:
    return RateLimiter(qps, burst, clock=fake.clock, sleep=fake.sleep)


def test_a_full_bucket_allows_a_burst_then_refuses() -> None:
    fake = FakeTime()
    bucket = limiter(fake, qps=10, burst=3)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert fake.sleeps == []


def test_tokens_refill_at_qps() -> None:
    fake = FakeTime()
    bucket = limiter(fake, qps=4, burst=1)
    assert bucket.try_acquire()
    fake.now += 0.2  # 0.8 of a token
    assert not bucket.try_acquire()
    fake.now += 0.05
    assert bucket.try_acquire()
    assert not bucket.try_acquire()


def test_refill_is_capped_at_burst() -> None:
    fake = FakeTime()
    bucket = limiter(fake, qps=100, burst=2)
    assert bucket.try_acquire()
    assert bucket.try_acquire()
    fake.now += 3600
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]


def test_acquire_sleeps_only_when_the_bucket_is_empty() -> None:
    fake = FakeTime()
    bucket = limiter(fake, qps=10, burst=2)
    bucket.acquire()
    bucket.acquire()
    assert fake.sleeps == []
    bucket.acquire()
    assert fake.sleeps == [pytest.approx(0.1)]


def test_waiting_callers_reserve_successive_slots() -> None:
    # The clock does not move while they sleep: each later caller waits one slot longer.
    fake = FakeTime(advance=False)
    bucket = limiter(fake, qps=5, burst=1)
    for _ in range(4):
        bucket.acquire()
    assert fake.sleeps == [pytest.approx(0.2), pytest.approx(0.4), pytest.approx(0.6)]
    assert not bucket.try_acquire()  # reserved tokens are spoken for
    fake.now += 0.6
    assert not bucket.try_acquire()
    fake.now += 0.2
    assert bucket.try_acquire()


def test_sustained_rate_is_qps_after_the_burst() -> None:
    fake = FakeTime()
    start = fake.now
    bucket = limiter(fake, qps=10, burst=5)
    for _ in range(105):
        bucket.acquire()
    assert fake.now - start == pytest.approx(10.0)


def test_a_clock_stepping_back_adds_no_tokens() -> None:
    fake = FakeTime()
    bucket = limiter(fake, qps=1, burst=1)
    assert bucket.try_acquire()
    fake.now -= 100
    assert not bucket.try_acquire()
    fake.now += 100.5
    assert not bucket.try_acquire()
    fake.now += 0.5
    assert bucket.try_acquire()


def test_concurrent_callers_share_exactly_the_burst() -> None:
    fake = FakeTime()
    bucket = limiter(fake, qps=1, burst=50)
    granted: list[bool] = []
    lock = threading.Lock()
    go = threading.Event()

    def take() -> None:
        go.wait(10)
        for _ in range(20):
            ok = bucket.try_acquire()
            with lock:
                granted.append(ok)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert len(granted) == 160
    assert granted.count(True) == 50


@pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 1), (float("nan"), 1), (1, 0)])
def test_invalid_settings_are_refused(qps: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(qps, burst)


@pytest.mark.parametrize("method", ["try_acquire", "acquire"])
def test_no_two_callers_are_inside_the_bucket_at_once(method: str) -> None:
    """The clock is read inside the critical section, so it can see who is in there: two
    callers meeting at a barrier in it prove the lock is missing (without any race: with
    the lock the second caller never reaches the clock while the first waits there)."""
    inside = threading.Barrier(2, timeout=0.3)
    met: list[bool] = []

    def clock() -> float:
        try:
            inside.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            pass
        return 50.0

    bucket = RateLimiter(qps=1, burst=1, clock=clock, sleep=lambda seconds: None)
    inside.reset()  # the constructor read the clock once, alone
    results: list[bool | None] = []
    take = getattr(bucket, method)
    callers = [threading.Thread(target=lambda: results.append(take())) for _ in "ab"]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=10)
    assert met == [], "two callers were in the bucket's critical section together"
    assert len(results) == 2


# --- take_or_wait: a refusal that says how long to wait -----------------------------------


def test_take_or_wait_takes_a_token_or_says_when_the_next_one_comes() -> None:
    fake = FakeTime()
    bucket = limiter(fake, qps=4, burst=2)
    assert [bucket.take_or_wait() for _ in range(2)] == [0.0, 0.0]
    assert bucket.take_or_wait() == pytest.approx(0.25)
    fake.now += 0.1
    assert bucket.take_or_wait() == pytest.approx(0.15), "a refusal takes nothing"
    fake.now += 0.15
    assert bucket.take_or_wait() == 0.0
    assert bucket.take_or_wait() == pytest.approx(0.25)


# --- KeyedRateLimiter: one bucket per key, bounded memory ---------------------------------


def keyed(
    fake: FakeTime, qps: float = 1.0, burst: int = 3, max_keys: int = 100
) -> KeyedRateLimiter:
    return KeyedRateLimiter(qps, burst, max_keys=max_keys, clock=fake.clock)


def test_each_key_has_its_own_bucket() -> None:
    fake = FakeTime()
    limits = keyed(fake, qps=2, burst=3)
    assert [limits.take_or_wait("10.0.0.1") for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    assert limits.take_or_wait("10.0.0.2") == 0.0, "another key is not slowed by the first"
    fake.now += 0.5
    assert limits.take_or_wait("10.0.0.1") == 0.0
    assert limits.take_or_wait("10.0.0.1") == pytest.approx(0.5)


def test_keys_beyond_the_bound_evict_the_least_recently_used() -> None:
    fake = FakeTime()
    limits = keyed(fake, burst=1, max_keys=3)
    for key in ("a", "b", "c"):
        assert limits.take_or_wait(key) == 0.0
    assert limits.take_or_wait("a") > 0, "a is now the most recently used"
    assert limits.take_or_wait("d") == 0.0  # evicts b, the least recently used
    assert len(limits) == 3
    assert limits.take_or_wait("a") > 0 and limits.take_or_wait("c") > 0
    assert limits.take_or_wait("b") == 0.0, "an evicted key starts again with a full bucket"


@given(st.lists(st.integers(0, 50), max_size=200), st.integers(1, 8))
def test_the_number_of_buckets_never_exceeds_the_bound(keys: list[int], max_keys: int) -> None:
    limits = keyed(FakeTime(), max_keys=max_keys)
    for key in keys:
        limits.take_or_wait(str(key))
        assert len(limits) <= max_keys


def test_a_keyed_limiter_refuses_a_zero_bound() -> None:
    with pytest.raises(ValueError):
        KeyedRateLimiter(1.0, 1, max_keys=0)


def test_a_token_given_back_is_available_again_but_never_past_the_burst() -> None:
    limiter = KeyedRateLimiter(1.0, 2, max_keys=10, clock=FakeTime().clock)
    assert limiter.take_or_wait("a") == 0
    assert limiter.take_or_wait("a") == 0
    assert limiter.take_or_wait("a") > 0
    limiter.give_back("a")
    assert limiter.take_or_wait("a") == 0
    limiter.give_back("a")
    limiter.give_back("a")
    limiter.give_back("a")
    assert limiter.take_or_wait("a") == 0
    assert limiter.take_or_wait("a") == 0
    assert limiter.take_or_wait("a") > 0, "given back past the burst"
    limiter.give_back("unknown")  # no bucket: nothing to give back to
    assert len(limiter) == 1
