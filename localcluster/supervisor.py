"""Restart the stack's processes that exit, as the kubelet restarts a pod's containers.

Each replica is a named slot with a way to start it. A background thread polls them; a
replica that exits while wanted is started again after a back-off that doubles with each
exit in a row, like the kubelet's CrashLoopBackOff, scaled down for a local stack. A
replica stopped on purpose (:meth:`Supervisor.stop`) is no longer wanted and stays down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from localcluster.processes import ManagedProcess

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
"""How soon an exit is noticed; the kubelet's PLEG relists every second."""
FIRST_BACKOFF_SECONDS = 0.5
"""Delay before the first restart after an exit. The kubelet waits 10 s, doubling to 5 min;
a local stack (and its tests) wants a replica back within a second."""
MAX_BACKOFF_SECONDS = 8.0
"""Cap of the doubling back-off: a replica that keeps crashing is retried this often."""
STEADY_RUN_SECONDS = 10.0
"""A replica that ran this long before it exited starts over from the first back-off (the
kubelet forgets a container's back-off after it ran 10 min)."""


def backoff_seconds(exits_in_a_row: int) -> float:
    """Delay before restarting a replica that has exited ``exits_in_a_row`` times (1+)
    without a steady run in between."""
    doubled: float = FIRST_BACKOFF_SECONDS * 2.0 ** max(exits_in_a_row - 1, 0)
    return min(doubled, MAX_BACKOFF_SECONDS)


@dataclass
class Replica:
    name: str
    spawn: Callable[[], ManagedProcess]
    process: ManagedProcess | None = None
    restarts: int = 0
    exits_in_a_row: int = 0
    restart_at: float | None = None


class Supervisor:
    """The replicas of a stack, restarted when they exit (see the module's docstring)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._clock = clock
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._replicas: dict[str, Replica] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        """Watch the replicas in a background thread until :meth:`close`."""
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()
        return self

    def run(self, name: str, spawn: Callable[[], ManagedProcess]) -> ManagedProcess:
        """Start a replica (``spawn`` starts it again after each exit) and keep it up."""
        process = spawn()
        with self._lock:
            self._replicas[name] = Replica(name, spawn, process)
        return process

    def process(self, name: str) -> ManagedProcess | None:
        """The replica's current process; None when it is not wanted."""
        with self._lock:
            replica = self._replicas.get(name)
            return replica.process if replica else None

    def restarts(self, name: str) -> int:
        with self._lock:
            replica = self._replicas.get(name)
            return replica.restarts if replica else 0

    def stop(self, *names: str) -> None:
        """Stop these replicas for good (a test that takes them down on purpose), all at
        once: each gets its SIGTERM without waiting for the others to exit."""
        with self._lock:
            taken = [self._replicas.pop(n) for n in names if n in self._replicas]
        processes = [r.process for r in taken if r.process is not None]
        if processes:
            with ThreadPoolExecutor(len(processes)) as pool:
                list(pool.map(lambda p: p.stop(), processes))

    def check(self) -> None:
        """One pass: schedule a restart for each replica that exited, start those due."""
        now = self._clock()
        with self._lock:
            for replica in self._replicas.values():
                process = replica.process
                if replica.restart_at is None and process is not None and not process.running():
                    ran = now - process.started
                    replica.exits_in_a_row = (
                        1 if ran >= STEADY_RUN_SECONDS else replica.exits_in_a_row + 1
                    )
                    delay = backoff_seconds(replica.exits_in_a_row)
                    replica.restart_at = now + delay
                    log.warning(
                        "%s exited (status %s) after %.1f s; restarting in %.1f s",
                        replica.name, process.returncode, ran, delay,
                    )  # fmt: skip
                    process.stop()  # what it left in its process group, and its log file
                if replica.restart_at is not None and now >= replica.restart_at:
                    replica.process = replica.spawn()
                    replica.restarts += 1
                    replica.restart_at = None
                    log.warning("%s restarted (restart %d)", replica.name, replica.restarts)

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.check()
            except Exception:  # a failed spawn is retried on the next pass
                log.exception("supervisor pass failed")

    def close(self) -> None:
        """Stop watching, then stop every replica."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            names = list(self._replicas)
        self.stop(*names)
