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
from types import FrameType

from prometheus_client import start_http_server

from controller.pullsecrets.wiring import PullSecretWiring
from controller.quotausage.wiring import QuotaUsageWiring
from kube.client import api_client
from kube.leaderelection import LeaderElector
from kube.ratelimit import RateLimiter
from kube.settings import Settings

log = logging.getLogger(__name__)

LEASE_NAME = "image-registry-controller"


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
    pull_secrets = PullSecretWiring(api, settings, limiter)
    quota_usage = QuotaUsageWiring(api, settings, limiter)
    pull_secrets.start_informers(stop)
    quota_usage.start_informers(stop)
    lost = threading.Event()

    def lead(leading: threading.Event) -> None:
        log.info("became leader: starting reconcilers")
        quotas = threading.Thread(
            target=quota_usage.run, args=(leading,), name="quota-usage", daemon=True
        )
        quotas.start()
        pull_secrets.run(leading)
        quotas.join()

    def stopped_leading() -> None:
        if not stop.is_set():
            log.error("lost the leader lease: exiting")
            lost.set()
            stop.set()

    if settings.leader_election:
        identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        elector = LeaderElector(api, settings.namespace, LEASE_NAME, identity)
        elector.run(lead, stopped_leading, stop)
    else:
        worker = threading.Thread(target=lead, args=(stop,), daemon=True)
        worker.start()
        stop.wait()
    log.info("controller stopped")
    return 1 if lost.is_set() else 0
