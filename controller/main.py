"""The ``controller`` command: the reconcilers, behind leader election.

Caches fill on every replica so a new leader starts warm; only the leader runs workers,
so only one replica writes. Losing the lease ends the process (as controller-runtime does)
and the pod restarts as a follower. ``/readyz`` is the caches synced; ``/healthz`` fails
for a leader that stopped renewing its Lease or whose workers are wedged, so that the
kubelet restarts it and another replica takes over.
"""

from __future__ import annotations

import functools
import logging
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Final, Protocol

from kubernetes import client

from controller.certificates.wiring import CertificateWiring
from controller.config import ControllerConfig
from controller.imagepruner.wiring import ImagePrunerWiring
from controller.pullsecrets.api import REQUEST_TIMEOUT
from controller.pullsecrets.wiring import PullSecretWiring
from controller.quotausage.wiring import QuotaUsageWiring
from controller.registrycerts.wiring import RegistryCertsWiring
from controller.registrytags.registry import UpstreamRegistry
from controller.registrytags.wiring import RegistryTagsWiring
from controller.rolebindings.wiring import RoleBindingWiring
from kube import events, metrics
from kube.client import api_client
from kube.health import Check, Synced, informers_synced, serve_probes
from kube.leaderelection import LeaderElector
from kube.metricsserver import serve_metrics
from kube.ratelimit import RateLimiter

log = logging.getLogger(__name__)

LEASE_NAME = "image-registry-controller"
WEDGED_AFTER_SECONDS = 10.0 * REQUEST_TIMEOUT
"""A worker is wedged when one reconcile runs this long, or keys wait this long while no
reconcile finishes. A call that times out (REQUEST_TIMEOUT, 30 s) ends its reconcile, so only
ten slow successes in a row could take this long; a wedged leader is restarted within
minutes, well inside a one-hour token's 40% refresh margin."""
EVENTS_STOP_SECONDS: Final = events.REQUEST_TIMEOUT
"""On the way out, the Event writer may be inside one write: wait that long for it."""


class Loop(Protocol):
    """A reconciler's wiring: works until ``stop``, then returns with its workers joined."""

    def run(self, stop: threading.Event) -> None: ...


class Progress(Protocol):
    def progress_problem(self, bound: float) -> str | None: ...


class LeaseHealth(Protocol):
    def renewal_problem(self) -> str | None: ...


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


def health_checks(
    elector: LeaseHealth | None, runners: Iterable[Progress], informers: Sequence[Synced]
) -> tuple[list[Check], list[Check]]:
    """(liveness, readiness): the Lease kept and every runner progressing; the caches
    synced."""
    liveness: list[Check] = [] if elector is None else [elector.renewal_problem]
    liveness += [functools.partial(r.progress_problem, WEDGED_AFTER_SECONDS) for r in runners]
    return liveness, [informers_synced(informers)]


class Stoppable(Protocol):
    def stop(self, timeout: float) -> None: ...


def run_reconcilers(
    loops: Sequence[Loop], elector: Elector | None, stop: threading.Event, writer: Stoppable
) -> bool:
    """``run_elected``, then the Event writer stops: only once every loop has returned,
    so no reconciler records into a stopped writer."""
    try:
        return run_elected(loops, elector, stop)
    finally:
        writer.stop(EVENTS_STOP_SECONDS)


Wiring = (
    PullSecretWiring
    | QuotaUsageWiring
    | RoleBindingWiring
    | RegistryCertsWiring
    | RegistryTagsWiring
    | CertificateWiring
    | ImagePrunerWiring
)


def reconciler_loops(
    api: client.ApiClient, config: ControllerConfig, limiter: RateLimiter, recorder: events.Recorder
) -> list[Wiring]:
    """Every reconciler the configuration turns on: pull secrets, quota usage and the
    default rights (RoleBindings and the ``builder`` account, in the pull secrets'
    namespaces) always, the registry certificates the nodes trust with a node-ca namespace
    (``--node-ca-namespace``), the registry's tags with an upstream registry to keep
    (``--upstream-registry``), the image-pruner CronJob with the image to run it from
    (``--pruner-image``), the certificates unless cert-manager issues them."""
    pull_secrets = PullSecretWiring(
        api,
        config.pull_secrets,
        config.namespace,
        limiter,
        recorder,
        reconcile=config.reconcile,
    )
    loops: list[Wiring] = [
        pull_secrets,
        QuotaUsageWiring(
            api,
            limiter,
            grace_seconds=config.quota_release_grace_seconds,
            reconcile=config.reconcile,
        ),
        RoleBindingWiring(
            api,
            config.pull_secrets.excluded_namespaces,
            limiter,
            pull_secrets.serviceaccounts,  # one ServiceAccount cache for both
            reconcile=config.reconcile,
        ),
    ]
    if config.node_ca_namespace is not None:
        loops.append(
            RegistryCertsWiring(
                api,
                config.namespace,
                config.node_ca_namespace,
                config.pull_secrets.internal_hostnames,
                config.pull_secrets.extra_hostnames,
                limiter,
                recorder,
                reconcile=config.reconcile,
            )
        )
    if config.upstream is not None:
        upstream = UpstreamRegistry(config.upstream.url, config.upstream.ca_file)
        loops.append(RegistryTagsWiring(api, limiter, upstream))
    if config.pruner is not None:
        loops.append(ImagePrunerWiring(api, config.pruner, limiter, reconcile=config.reconcile))
    if config.certificates is not None:
        loops.append(CertificateWiring(api, config.certificates, limiter))
    return loops


def run_controller(config: ControllerConfig) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serve_metrics(config.metrics_bind_address)

    reconcile = config.reconcile
    api = api_client(config.kubeconfig, qps_pool=reconcile.reconcile_workers + 8)
    limiter = RateLimiter(reconcile.kube_api_qps, reconcile.kube_api_burst)
    # Events as client-go records them: a repeated warning grows one Event's count.
    recorder = events.AggregatingEventRecorder(client.CoreV1Api(api)).start()
    loops = reconciler_loops(api, config, limiter, recorder)
    elector = None
    if config.leader_elect:
        identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        elector = LeaderElector(api, config.namespace, LEASE_NAME, identity)
    else:  # the only replica: it writes, as a leader would
        metrics.LEADER_STATUS.labels(LEASE_NAME).set(1)
    liveness, readiness = health_checks(
        elector,
        [loop.runner for loop in loops],
        [informer for loop in loops for informer in loop.informers],
    )
    probes = serve_probes(config.health_probe_bind_address, liveness=liveness, readiness=readiness)
    for loop in loops:
        loop.start_informers(stop)
    lost = run_reconcilers(loops, elector, stop, recorder)
    if probes is not None:
        probes.close()
    log.info("controller stopped")
    return 1 if lost else 0
