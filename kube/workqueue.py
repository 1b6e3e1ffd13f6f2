"""A work queue with client-go's semantics: deduplicated, one worker per key, delays, backoff.

Reconcilers are level-based, so a key only says "look at this object again": adding a key
that is already waiting is a no-op, and a key added while a worker holds it is handed out
again once that worker calls ``done`` - never to two workers at once.

Delayed keys sit in a heap that ``get`` (and ``add``/``len``) drain when due, so no thread
is needed per item or at all; a blocked ``get`` wakes at the earliest deadline.

A named queue exports client-go's work-queue metrics: depth, queue time and retries.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

from kube import metrics

DEFAULT_BASE_DELAY = 0.05
DEFAULT_MAX_DELAY = 60.0


class WorkQueue:
    """Thread-safe queue of hashable keys (``"namespace/name"``).

    ``monotonic`` drives the delays of ``add_after``/``add_rate_limited`` and the queue-time
    measures (inject a fake in tests); the ``timeout`` of ``get`` is real time, since it
    bounds how long a thread blocks. ``name`` labels the metrics; None exports none.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._monotonic = monotonic
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Hashable] = deque()
        # Keys to hand out: those in _queue plus those re-added while being processed.
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._delayed: list[tuple[float, int, Hashable]] = []
        self._deadlines: dict[Hashable, float] = {}
        self._sequence = itertools.count()
        self._failures: dict[Hashable, int] = {}
        self._shutting_down = False
        self.name = name
        # When each key in _queue became ready: its queue time, and the oldest wait.
        self._ready_since: dict[Hashable, float] = {}
        if name is not None:  # every series exists from the start, zero until used
            metrics.WORKQUEUE_DEPTH.labels(name).set(0)
            metrics.WORKQUEUE_QUEUE_DURATION.labels(name)
            metrics.WORKQUEUE_RETRIES.labels(name)

    def add(self, key: Hashable) -> None:
        """Queue ``key`` unless it is already waiting; after shutdown, do nothing."""
        with self._cond:
            self._add_locked(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; an earlier pending deadline for it wins."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            deadline = self._monotonic() + delay
            current = self._deadlines.get(key)
            if current is not None and current <= deadline:
                return
            self._deadlines[key] = deadline
            heapq.heappush(self._delayed, (deadline, next(self._sequence), key))
            # A getter blocked until a later deadline (or forever) must recompute its wait.
            self._cond.notify_all()

    def add_rate_limited(self, key: Hashable) -> None:
        """Queue ``key`` after its backoff: base_delay * 2**failures, capped at max_delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        if self.name is not None:
            metrics.WORKQUEUE_RETRIES.labels(self.name).inc()
        # 2**64 * base is far past any sane cap; bounding the exponent avoids float overflow.
        delay = min(self._base_delay * 2.0 ** min(failures, 64), self._max_delay)
        self.add_after(key, delay)

    def forget(self, key: Hashable) -> None:
        """Reset the backoff of ``key`` (call after it was processed successfully)."""
        with self._cond:
            self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        """How many times ``key`` went through ``add_rate_limited`` since its last ``forget``."""
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, timeout: float | None = None) -> Hashable | None:
        """The next key, marked as processing; ``None`` on shutdown or after ``timeout``.

        After ``shutdown`` no more keys are handed out, even waiting ones: a leader that
        lost its lease must stop writing, and the next leader relists everything anyway.
        """
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                self._promote_due_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    ready_since = self._ready_since.pop(key)
                    if self.name is not None:
                        waited = self._monotonic() - ready_since
                        metrics.WORKQUEUE_QUEUE_DURATION.labels(self.name).observe(waited)
                    self._report_depth_locked()
                    return key
                wait = None if end is None else end - time.monotonic()
                if wait is not None and wait <= 0:
                    return None
                if self._delayed:
                    until_due = max(self._delayed[0][0] - self._monotonic(), 0.0)
                    wait = until_due if wait is None else min(wait, until_due)
                self._cond.wait(wait)

    def done(self, key: Hashable) -> None:
        """Mark ``key`` processed; if it was added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._enqueue_locked(key)

    def shutdown(self) -> None:
        """Refuse new keys and wake every blocked ``get`` (they return ``None``)."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def __len__(self) -> int:
        """Keys waiting to be handed out (not those delayed or being processed)."""
        with self._cond:
            self._promote_due_locked()
            return len(self._queue)

    def oldest_wait(self) -> float:
        """Seconds the key first in line has waited for a worker; 0 when none waits."""
        with self._cond:
            self._promote_due_locked()
            if not self._queue:
                return 0.0
            # Keys are appended as they become ready, so the first one waited longest.
            return self._monotonic() - self._ready_since[self._queue[0]]

    def _add_locked(self, key: Hashable) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._enqueue_locked(key)

    def _enqueue_locked(self, key: Hashable) -> None:
        self._queue.append(key)
        self._ready_since[key] = self._monotonic()
        self._report_depth_locked()
        self._cond.notify()

    def _report_depth_locked(self) -> None:
        if self.name is not None:
            metrics.WORKQUEUE_DEPTH.labels(self.name).set(len(self._queue))

    def _promote_due_locked(self) -> None:
        if not self._delayed:
            return
        now = self._monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            deadline, _, key = heapq.heappop(self._delayed)
            # Entries superseded by an earlier deadline for the same key are stale.
            if self._deadlines.get(key) == deadline:
                del self._deadlines[key]
                self._add_locked(key)
