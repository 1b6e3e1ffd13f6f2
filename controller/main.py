"""The ``controller`` command: the reconcilers, behind leader election.

Caches fill on every replica so a new leader starts warm; only the leader runs workers,
so only one replica writes. Losing the lease ends the process (as controller-runtime does)
and the pod restarts as a follower.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Protocol

from prometheus_client import start_http_server

from controller.certificates.wiring import CertificateWiring
from controller.pullsecrets.wiring import PullSecretWiring
from controller.quotausage.wiring import QuotaUsageWiring
from kube.client import api_client
from kube.leaderelection import LeaderElector
from kube.ratelimit import RateLimiter
from kube.settings import Settings

log = logging.getLogger(__name__)

LEASE_NAME = "image-registry-controller"


class Loop(Protocol):
    """A reconciler's wiring: works until ``stop``, then returns with its workers joined."""

    def run(self, stop: threading.Event) -> None: ...


class Elector(Protocol):
    def run(
        self,
        on_started_leading: Callable[[threading.Event], None],
        on_stopped_leading: Callable[[], None],
        stop: threading.Event,
    ) -> None: ...


def run_elected(loops: Sequence[Loop], elector: Elector | None, stop: threading.Event) -> bool:
    """Run every loop while this replica holds the Lease, until ``stop``; without an
    elector (leader election off), run them at once. True when the Lease was lost: then
    ``stop`` is set too, and every loop has returned, so nothing of ours still writes."""
    lost = threading.Event()

    def lead(leading: threading.Event) -> None:
        log.info("became leader: starting reconcilers")
        threads = [
            threading.Thread(target=loop.run, args=(leading,), name=f"loop-{i}", daemon=True)
            for i, loop in enumerate(loops)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def stopped_leading() -> None:
        if not stop.is_set():
            log.error("lost the leader lease: exiting")
            lost.set()
            stop.set()

    if elector is None:
        worker = threading.Thread(target=lead, args=(stop,), name="reconcilers", daemon=True)
        worker.start()
        stop.wait()
        worker.join()
    else:
        elector.run(lead, stopped_leading, stop)
    return lost.is_set()


def _serve_metrics(bind: str) -> None:
    host, _, port = bind.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "0.0.0.0")
    log.info("metrics on http://%s:%d/metrics", *server.server_address[:2])


def run_controller(settings: Settings) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _serve_metrics(settings.metrics_bind)

    api = api_client(settings.kubeconfig, qps_pool=settings.reconcile_workers + 8)
    limiter = RateLimiter(settings.api_qps, settings.api_burst)
    loops: list[PullSecretWiring | QuotaUsageWiring | CertificateWiring] = [
        PullSecretWiring(api, settings, limiter),
        QuotaUsageWiring(api, settings, limiter),
    ]
    if settings.manage_certificates:
        loops.append(CertificateWiring(api, settings, limiter))
    for loop in loops:
        loop.start_informers(stop)
    elector = None
    if settings.leader_election:
        identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        elector = LeaderElector(api, settings.namespace, LEASE_NAME, identity)
    lost = run_elected(loops, elector, stop)
    log.info("controller stopped")
    return 1 if lost else 0
