"""Client-side request rate limiting: a token bucket like client-go's QPS/Burst.

A backlog of thousands of objects must not flood the API server: every call takes a token
first. The bucket holds up to ``burst`` tokens and refills at ``qps`` per second.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Thread-safe token bucket, starting full.

    ``acquire`` reserves a token under the lock (the balance may go negative) and sleeps
    off the debt outside it, so waiting callers are served in arrival order and a sleeping
    caller blocks nobody else's bookkeeping, as golang.org/x/time/rate does.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not qps > 0:
            raise ValueError(f"qps must be positive, got {qps}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock()

    def acquire(self) -> None:
        """Take a token, blocking until one is available."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            debt = -self._tokens
        if debt > 0:
            self._sleep(debt / self.qps)

    def try_acquire(self) -> bool:
        """Take a token if one is available now; never blocks."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def take_or_wait(self) -> float:
        """Take a token if one is available now and return 0; else take nothing and
        return the seconds until one will be (what an HTTP ``Retry-After`` needs)."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.qps

    def give_back(self) -> None:
        """Return a token taken for something that turned out not to count (never more
        than ``burst``)."""
        with self._lock:
            self._refill()
            self._tokens = min(float(self.burst), self._tokens + 1.0)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._last, 0.0)  # a clock that steps back adds nothing
        self._last = max(now, self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)


class KeyedRateLimiter:
    """One token bucket per key (a client address, say), at most ``max_keys`` of them.

    Past the bound the least recently used bucket is forgotten: a key that comes back
    starts with a full bucket, which is what a caller with that many addresses gets anyway.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        RateLimiter(qps, burst, clock=clock)  # validates qps and burst now, not on first use
        self.qps = qps
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, RateLimiter] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take_or_wait(self, key: str) -> float:
        """``RateLimiter.take_or_wait`` on ``key``'s bucket."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = RateLimiter(self.qps, self.burst, clock=self._clock)
                self._buckets[key] = bucket
                while len(self._buckets) > self._max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
        return bucket.take_or_wait()

    def give_back(self, key: str) -> None:
        """``RateLimiter.give_back`` on ``key``'s bucket, if it still has one."""
        with self._lock:
            bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.give_back()
