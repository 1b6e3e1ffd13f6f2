"""A steady load of writes through the API server (ServiceAccounts, each with its
ImageStream), counting every failure: what the rotation, restart and fault tests keep
running while they break something."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from kubernetes import client

from tests.integration.support.objects import stream
from tests.integration.support.pullsecrets import REF

REQUEST_SECONDS = 30
"""One create through the API server; a stopped thread finishes within it."""


@dataclass
class Load:
    """ServiceAccounts and ImageStreams created through the API server by two threads;
    every failed create, and every ServiceAccount our (fail-open) mutating webhook did not
    patch, counts as a failure."""

    api: client.ApiClient
    namespace: str
    per_second: float | None = None
    """ServiceAccounts (each with its ImageStream) created per second by both threads
    together; None: as fast as they go."""
    started: float = field(default_factory=time.monotonic)
    created: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        self.started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(2)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def keep_running_until(self, offset: float) -> None:
        """Let the load run until ``offset`` seconds after it started (the test's design:
        how long the load lasts, not a wait for something to happen)."""
        remaining = self.started + offset - time.monotonic()
        if remaining > 0:
            self._stop.wait(remaining)

    def finish(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_SECONDS)

    def _run(self, worker: int) -> None:
        core, custom = client.CoreV1Api(self.api), client.CustomObjectsApi(self.api)
        interval = 0.0 if self.per_second is None else len(self._threads) / self.per_second
        n = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            # Paced, not waiting for anything: the load's rate is the test's design.
            next_at += interval
            if interval and self._stop.wait(max(next_at - time.monotonic(), 0)):
                return
            n += 1
            name = f"load-{worker}-{n}"
            failure = None
            try:
                sa = core.create_namespaced_service_account(
                    self.namespace, {"metadata": {"name": name}}, _request_timeout=REQUEST_SECONDS
                )
                if REF not in (sa.metadata.annotations or {}):
                    failure = f"ServiceAccount {name} was not patched by our webhook"
                custom.create_namespaced_custom_object(
                    "image.alauda.io", "v1", self.namespace, "imagestreams", stream(name),
                    _request_timeout=REQUEST_SECONDS,
                )  # fmt: skip
            except Exception as err:
                failure = f"{name}: {type(err).__name__}: {getattr(err, 'reason', None) or err}"
            with self._lock:
                self.created += 2
                if failure:
                    self.failures.append(failure)
