"""Workers that drain a work queue into a reconcile function, controller-runtime style."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Protocol

from kube import metrics
from kube.requeue import Requeue

log = logging.getLogger(__name__)

Reconcile = Callable[[str], float | None]
"""Returns seconds after which to reconcile the key again (controller-runtime's
``Result.RequeueAfter``), or None; raises ``Requeue`` to be tried again with backoff."""


class Queue(Protocol):
    def get(self, timeout: float | None = None) -> Hashable | None: ...
    def done(self, key: Hashable) -> None: ...
    def forget(self, key: Hashable) -> None: ...
    def add_after(self, key: Hashable, delay: float) -> None: ...
    def add_rate_limited(self, key: Hashable) -> None: ...
    def num_requeues(self, key: Hashable) -> int: ...
    def oldest_wait(self) -> float: ...
    def __len__(self) -> int: ...


class Runner:
    """``workers`` threads; a failed key is retried with per-key exponential backoff;
    a ``Requeue`` is retried the same way but expected, so it is logged quietly and not
    counted as a failure."""

    def __init__(
        self,
        name: str,
        queue: Queue,
        reconcile: Reconcile,
        *,
        workers: int,
        progress_every: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.queue = queue
        self._reconcile = reconcile
        self._workers = workers
        self._progress_every = progress_every
        self._monotonic = monotonic
        # Every series exists from the start, zero until used.
        metrics.RECONCILE_ERRORS.labels(name)
        metrics.RECONCILE_DURATION.labels(name)
        self._lock = threading.Lock()
        self.reconciled = 0
        self.failed = 0
        self._threads: list[threading.Thread] = []
        self._stop: threading.Event | None = None  # set by start: workers run until it is set
        self._in_flight: dict[str, float] = {}  # worker thread -> when its reconcile began
        self._last_done = 0.0  # when the last reconcile ended (or the workers started)

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        with self._lock:
            self._stop = stop
            self._last_done = self._monotonic()
        threads = [
            threading.Thread(target=self._work, args=(stop,), name=f"{self.name}-{i}", daemon=True)
            for i in range(self._workers)
        ]
        threads.append(
            threading.Thread(
                target=self._report, args=(stop,), name=f"{self.name}-progress", daemon=True
            )
        )
        for thread in threads:
            thread.start()
        self._threads.extend(threads)
        return threads

    def join(self) -> None:
        """Wait for the threads of ``start`` to exit (after ``stop``): each worker finishes
        the key it holds, so a leader that lost its Lease is not writing once this returns."""
        for thread in self._threads:
            thread.join()
        with self._lock:
            self._stop = None

    def progress_problem(self, bound: float) -> str | None:
        """Why the workers look wedged, or None: a reconcile running longer than ``bound``
        seconds, or keys waiting longer than that while no reconcile finished for as long.
        A backlog that drains is fine however long its keys wait; a runner that is not
        running (a follower, a stopped leader) has nothing to judge."""
        with self._lock:
            if self._stop is None or self._stop.is_set():
                return None
            now = self._monotonic()
            longest = max((now - began for began in self._in_flight.values()), default=0.0)
            since_done = now - self._last_done
        if longest > bound:
            return f"{self.name}: a reconcile has run for {longest:.0f}s"
        waited = self.queue.oldest_wait()
        if waited > bound and since_done > bound:
            return (
                f"{self.name}: keys waiting for {waited:.0f}s and no reconcile finished "
                f"for {since_done:.0f}s"
            )
        return None

    def _work(self, stop: threading.Event) -> None:
        while not stop.is_set():
            key = self.queue.get(timeout=0.5)
            if key is None:
                continue
            started = self._monotonic()
            worker = threading.current_thread().name
            with self._lock:
                self._in_flight[worker] = started
            try:
                requeue_after = self._reconcile(str(key))
            except Requeue as err:
                log.debug("%s %s: %s; retrying", self.name, key, err)
                self.queue.add_rate_limited(key)
            except Exception as err:
                metrics.RECONCILE_ERRORS.labels(self.name).inc()
                with self._lock:
                    self.failed += 1
                attempts = self.queue.num_requeues(key)
                log.warning(
                    "%s %s failed (attempt %d): %s", self.name, key, attempts + 1, _short(err)
                )
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if requeue_after is not None:
                    self.queue.add_after(key, max(requeue_after, 0.0))
                with self._lock:
                    self.reconciled += 1
            finally:
                self.queue.done(key)
                ended = self._monotonic()
                with self._lock:
                    del self._in_flight[worker]
                    self._last_done = ended
                metrics.RECONCILE_DURATION.labels(self.name).observe(ended - started)

    def _report(self, stop: threading.Event) -> None:
        last = (-1, -1, -1)
        while not stop.wait(self._progress_every):
            depth = len(self.queue)
            now = (self.reconciled, self.failed, depth)
            if now != last and (depth or now[:2] != last[:2]):
                log.info(
                    "%s progress: %d reconciled, %d failed, %d queued",
                    self.name,
                    self.reconciled,
                    self.failed,
                    depth,
                )
            last = now


def _short(err: Exception) -> str:
    """One line, without response bodies (they may echo object contents)."""
    status = getattr(err, "status", None)
    if status is not None:
        return f"API error {status} {getattr(err, 'reason', '')}".strip()
    return f"{type(err).__name__}: {err}"
