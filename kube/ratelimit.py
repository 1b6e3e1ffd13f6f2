"""Client-side request rate limiting: a token bucket like client-go's QPS/Burst.

A backlog of thousands of objects must not flood the API server: every call takes a token
first. The bucket holds up to ``burst`` tokens and refills at ``qps`` per second.
"""

from __future__ import annotations

import threading
import time
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

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._last, 0.0)  # a clock that steps back adds nothing
        self._last = max(now, self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
