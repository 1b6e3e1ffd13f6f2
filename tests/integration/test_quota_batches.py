"""Charges batched per namespace (``serving.chargequeue``), against the real API server:
several chargers stand for several serving processes, each with threads charging at once.
"""

from __future__ import annotations

import threading

from kube.resourcequotas import ResourceQuotaClient
from quota.objects import Obj
from serving.quotacharge import REQUEST_TIMEOUT, QuotaCharger
from tests.integration.support.cluster import ClusterEnv
from tests.integration.support.objects import quota, used

PROCESSES = 3
"""Chargers, as make dev's serving processes (2 pods, 2 workers each) less one: several."""
THREADS_EACH = 8
"""Creates in flight at once per process: the latency bench's burst."""
ROOM = 10
"""Fewer than the creates, so some are denied, more than one process's share."""
DEADLINE = 60.0


class CountedWrites:
    """The real quota client, counting its successful status writes."""

    def __init__(self, real: ResourceQuotaClient) -> None:
        self._real = real
        self._lock = threading.Lock()
        self.writes = 0

    def list(self, namespace: str, *, timeout: float) -> list[Obj]:
        return self._real.list(namespace, timeout=timeout)

    def read(self, namespace: str, name: str, *, timeout: float) -> Obj:
        return self._real.read(namespace, name, timeout=timeout)

    def replace_status(self, quota: Obj, *, timeout: float) -> Obj:
        written = self._real.replace_status(quota, timeout=timeout)
        with self._lock:
            self.writes += 1
        return written


def test_concurrent_charges_in_several_processes_admit_exactly_the_room_in_fewer_writes(
    cluster: ClusterEnv, namespace: str
) -> None:
    cluster.apply(quota({"alauda.io/imagestreams": str(ROOM)}), "-n", namespace)
    cluster.wait(lambda: used(cluster, namespace) == "0", timeout=30, what="usage to be computed")
    real = ResourceQuotaClient(cluster.api, timeout=REQUEST_TIMEOUT)
    # Every process's cache shows the quota as first counted and never catches up: the
    # worst a lagging watch cache can do.
    stale = real.list(namespace)
    gateways = [CountedWrites(real) for _ in range(PROCESSES)]
    chargers = [QuotaCharger(g, lambda ns: [dict(q) for q in stale]) for g in gateways]
    start = threading.Barrier(PROCESSES * THREADS_EACH)
    verdicts: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def create(charger: QuotaCharger) -> None:
        try:
            start.wait(DEADLINE)
            allowed = charger.charge(namespace).decision.allowed
        except BaseException as err:
            with lock:
                errors.append(err)
            return
        with lock:
            verdicts.append(allowed)

    threads = [
        threading.Thread(target=create, args=(charger,))
        for charger in chargers
        for _ in range(THREADS_EACH)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(thread.is_alive() for thread in threads), "a charge hung"
    assert errors == []
    charges = PROCESSES * THREADS_EACH
    assert verdicts.count(True) == ROOM and verdicts.count(False) == charges - ROOM
    assert used(cluster, namespace) == str(ROOM)
    writes = sum(g.writes for g in gateways)
    assert writes < ROOM, f"{writes} status writes for {ROOM} admitted charges"
    assert all(len(charger) == 0 for charger in chargers)
