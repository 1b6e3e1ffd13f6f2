"""Charge ``alauda.io/imagestreams`` on ResourceQuota status at admission, atomically.

Like the Kubernetes quota admission plugin: decide on the cached quotas, write the new
``status.used`` with the quota's resourceVersion as precondition, and on a conflict re-read
the quotas live and decide again. Several quotas are all charged or none: charges already
written are taken back when a later one cannot be made. A charge whose create then fails
is released by the usage reconciler.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from kubernetes.client.exceptions import ApiException

from quota.objects import Obj
from quota.quantity import InvalidQuantity
from quota.resourcequota import ChargePlan, imagestreams_used, plan_create, with_used
from webhook import metrics

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5
"""Seconds per API call: a charge runs inside the API server's 10 s webhook timeout."""


class ChargeConflict(Exception):
    """Too many concurrent writers; the create is denied retryably."""


class QuotaGateway(Protocol):
    """Live ResourceQuota reads and conditional status writes (``ApiException`` 409/404)."""

    def list(self, namespace: str) -> list[Obj]: ...
    def read(self, namespace: str, name: str) -> Obj: ...
    def replace_status(self, quota: Obj) -> None: ...


class QuotaCharger:
    def __init__(
        self,
        quotas: QuotaGateway,
        cached_quotas: Callable[[str], list[Obj]],
        *,
        attempts: int = 12,
    ) -> None:
        self._quotas = quotas
        self._cached = cached_quotas
        self._attempts = attempts
        # One charge per namespace at a time in this process: threads of one replica never
        # conflict with each other; replicas still meet at the resourceVersion check.
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()

    def _lock(self, namespace: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[namespace]

    def _live(self, namespace: str) -> list[Obj]:
        return self._quotas.list(namespace)

    def judge(self, namespace: str) -> ChargePlan:
        """The verdict without writing (dry-run, PushReview): a denial is confirmed live."""
        plan = plan_create(self._cached(namespace))
        if not plan.decision.allowed:
            plan = plan_create(self._live(namespace))
        return plan

    def charge(self, namespace: str) -> ChargePlan:
        """Charge one ImageStream create; the returned plan says whether it was allowed."""
        with self._lock(namespace):
            return self._charge(namespace)

    def _charge(self, namespace: str) -> ChargePlan:
        quotas = self._cached(namespace)
        live = False
        for attempt in range(self._attempts):
            plan = plan_create(quotas)
            if not plan.decision.allowed and not live:
                quotas, live = self._live(namespace), True  # the cache may lag a release
                continue
            if not plan.decision.allowed:
                metrics.QUOTA_CHARGES.labels("exceeded").inc()
                return plan
            if not plan.charges:
                return plan
            by_name = {q["metadata"]["name"]: q for q in quotas}
            written: list[str] = []
            try:
                for charge in plan.charges:
                    self._quotas.replace_status(with_used(by_name[charge.name], charge.new_used))
                    written.append(charge.name)
            except ApiException as err:
                if err.status not in (404, 409):
                    self._release(namespace, written)
                    raise
                metrics.QUOTA_CHARGES.labels("conflict").inc()
                self._release(namespace, written)
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
                quotas, live = self._live(namespace), True
                continue
            metrics.QUOTA_CHARGES.labels("charged").inc()
            return plan
        raise ChargeConflict(f"could not charge quota in {namespace}: too many concurrent writes")

    def _release(self, namespace: str, names: list[str]) -> None:
        """Take back charges of an all-or-none write that failed part-way (best effort:
        whatever is left over, the usage reconciler releases)."""
        for name in names:
            for _ in range(self._attempts):
                try:
                    current = self._quotas.read(namespace, name)
                    used = imagestreams_used(current)
                    self._quotas.replace_status(with_used(current, str(max(used - 1, 0))))
                    break
                except (ApiException, InvalidQuantity) as err:
                    if isinstance(err, ApiException) and err.status == 409:
                        continue
                    log.warning("could not release charge on quota %s/%s: %s", namespace, name, err)
                    break
