"""Charge ``alauda.io/imagestreams`` (at admission) and ``alauda.io/image-storage`` (at a
push) on ResourceQuota status, atomically.

Like the Kubernetes quota admission plugin: decide on the cached quotas, or on the quota
our own last write returned where that is newer (the watch cache lags our writes), write
the new ``status.used`` with the quota's resourceVersion as precondition, and on a
conflict re-read the quotas live and decide again. Several quotas are all charged or
none: charges already written are taken back when a later one cannot be made. A charge
whose create then fails is released by the usage reconciler.

Also like it, the charges that queue in one namespace while a charge runs are decided
together and written once per quota (``serving.chargequeue``, ``quota.chargebatch``):
each waiter gets its own verdict; a batch whose write fails for another reason than a
race is charged waiter by waiter. A batch's calls end by the earliest deadline in it; a
waiter whose deadline passes leaves it alone (refused retryably), the others go on.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from kube import apierrors
from quota.chargebatch import BatchPlan, ChargeRequest, plan_batch
from quota.objects import Obj, object_name
from quota.quantity import InvalidQuantity
from quota.resourcequota import (
    ChargePlan,
    desired_used,
    newer_quota,
    plan_create,
    resource_used,
    with_used,
)
from quota.resources import RESOURCE_IMAGESTREAMS
from serving import metrics
from serving.chargequeue import BatchQueues, TakeMore, Waiter

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5
"""Seconds per API call at most; a call never gets more than the charge has left."""
CHARGE_DEADLINE_SECONDS = 8.0
"""A charge, lock wait included, ends within this: the imagestreams webhook's timeout is
10 s, and a charge that lands after the API server gave up would hold quota for a create
that never happened (until the usage reconciler releases it)."""
RELEASE_SECONDS = 1.0
"""Seconds to take back a batch's partial charge, apart from the charge's deadline (often
what stopped the batch): half the 2 s between CHARGE_DEADLINE_SECONDS and the webhook's
10 s timeout, so the thread that leads still answers its own request inside it."""
CHARGE_ATTEMPTS = 12
"""Writes a batch tries before it answers retryably: kube-apiserver's quota admission
tries 4 (``checkQuotas(..., 3)``) but serves a whole API server's namespace from one
queue; our several processes lose more races to each other, and the deadline bounds
the total anyway."""
CONFLICT_BACKOFF_SECONDS = 0.01
"""The window, per attempt so far, of the random wait before re-reading after a 409:
client-go's ``retry.DefaultRetry`` waits 10 ms between conflict retries; random, so the
processes that lost do not all come back at once, and growing, as attempts pile up."""
WRITTEN_QUOTAS_KEPT = 100
"""Quotas our writes returned that a process remembers, least recently used dropped first:
the size of kube-apiserver's own (``resource_access.go``, ``lru.New(100)``)."""


class ChargeConflict(Exception):
    """Too many concurrent writers; the create is denied retryably."""


class PartialChargeLeft(ChargeConflict):
    """Part of an all-or-none write could not be taken back: the charge stops (retryably)
    instead of charging again on top of it; the usage reconciler releases it."""


class QuotaGateway(Protocol):
    """Live ResourceQuota reads and conditional status writes (``ApiException`` Conflict or
    NotFound), each bounded by ``timeout`` seconds."""

    def list(self, namespace: str, *, timeout: float) -> list[Obj]: ...
    def read(self, namespace: str, name: str, *, timeout: float) -> Obj: ...
    def replace_status(self, quota: Obj, *, timeout: float) -> Obj:
        """The quota as written (its new resourceVersion)."""
        ...


class WrittenQuotas:
    """The quotas our own status writes returned, by namespace and name, bounded (LRU).

    Charges decide on the newer of each cached quota and its entry here
    (``newer_quota``), so sequential charges write once each instead of failing their
    precondition on the lagging cache. An entry is dropped when a write of it fails (the
    quota changed or is gone) or when the cache no longer has that quota (deleted).
    """

    def __init__(self, size: int = WRITTEN_QUOTAS_KEPT) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], Obj] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def remember(self, namespace: str, quota: Obj) -> None:
        key = (namespace, object_name(quota))
        with self._lock:
            self._entries[key] = quota
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._entries.pop((namespace, name), None)

    def fresher(self, namespace: str, cached: list[Obj]) -> list[Obj]:
        """``cached`` with each quota replaced by the one we wrote where that is newer;
        entries of this namespace that the cache no longer lists are forgotten."""
        names = {object_name(q) for q in cached}
        chosen: list[Obj] = []
        with self._lock:
            for key in [k for k in self._entries if k[0] == namespace and k[1] not in names]:
                del self._entries[key]
            for quota in cached:
                written = self._entries.get((namespace, object_name(quota)))
                if written is not None:
                    self._entries.move_to_end((namespace, object_name(quota)))
                chosen.append(_as_obj(newer_quota(quota, written)))
        return chosen


def _write_result(err: ApiException) -> str:
    return "conflict" if apierrors.is_conflict(err) else "failed"


def _as_obj(quota: Mapping[str, Any]) -> Obj:
    return quota if isinstance(quota, dict) else dict(quota)


class QuotaCharger:
    def __init__(
        self,
        quotas: QuotaGateway,
        cached_quotas: Callable[[str], list[Obj]],
        *,
        attempts: int = CHARGE_ATTEMPTS,
        deadline_seconds: float = CHARGE_DEADLINE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        written: WrittenQuotas | None = None,
    ) -> None:
        self._quotas = quotas
        self._cached = cached_quotas
        self._written = WrittenQuotas() if written is None else written
        self._attempts = attempts
        self._deadline = deadline_seconds
        self._clock = clock
        # One batch per namespace at a time in this process: threads of one replica never
        # conflict with each other, and the charges queued meanwhile share the next write;
        # replicas still meet at the resourceVersion check.
        self._queues: BatchQueues[ChargeRequest, ChargePlan] = BatchQueues(
            self._run_batch, self._timed_out, clock=clock
        )

    def __len__(self) -> int:
        """Namespaces with charges running or queued (none stay behind once answered)."""
        return len(self._queues)

    def queued(self, namespace: str) -> int:
        """Charges of ``namespace`` waiting for the batch that runs to end."""
        return self._queues.queued(namespace)

    def _time_left(self, end: float, namespace: str) -> float:
        """Seconds a call may take: what is left, at most REQUEST_TIMEOUT; none left is a
        retryable failure."""
        left = end - self._clock()
        if left <= 0:
            raise ChargeConflict(
                f"could not charge quota in {namespace}: no charge within {self._deadline:g} s"
            )
        return min(REQUEST_TIMEOUT, left)

    def _fresh(self, namespace: str) -> list[Obj]:
        """The cached quotas, or the ones our own writes returned where those are newer."""
        return self._written.fresher(namespace, self._cached(namespace))

    def _write(self, namespace: str, quota: Obj, end: float) -> None:
        """Write ``quota``'s status and remember what came back; a failed precondition
        (or a deleted quota) forgets it."""
        try:
            written = self._quotas.replace_status(quota, timeout=self._time_left(end, namespace))
        except ApiException as err:
            if apierrors.is_conflict(err) or apierrors.is_not_found(err):
                self._written.forget(namespace, object_name(quota))
            if apierrors.is_conflict(err):
                metrics.QUOTA_CHARGES.labels("conflict").inc()
            metrics.QUOTA_WRITES.labels(_write_result(err)).inc()
            raise
        metrics.QUOTA_WRITES.labels("written").inc()
        self._written.remember(namespace, written)

    def _live(self, namespace: str, end: float) -> list[Obj]:
        return self._quotas.list(namespace, timeout=self._time_left(end, namespace))

    def judge(
        self, namespace: str, requested: int = 1, resource: str = RESOURCE_IMAGESTREAMS
    ) -> ChargePlan:
        """The verdict without writing (dry-run, PushReview): a denial is confirmed live."""
        plan = plan_create(self._fresh(namespace), requested, resource)
        if not plan.decision.allowed:
            live = self._live(namespace, self._clock() + self._deadline)
            plan = plan_create(live, requested, resource)
        return plan

    def charge(
        self, namespace: str, requested: int = 1, resource: str = RESOURCE_IMAGESTREAMS
    ) -> ChargePlan:
        """Charge one ImageStream create (or ``requested`` bytes of a push, for
        ``alauda.io/image-storage``); the returned plan says whether it was allowed.

        Charges queued in one namespace meanwhile are decided and written with it, one
        status write per quota (``serving.chargequeue``, ``quota.chargebatch``).
        Retryable ``ChargeConflict`` when no charge could be made within the deadline."""
        end = self._clock() + self._deadline
        return self._queues.submit(namespace, ChargeRequest(requested, resource), end)

    def _timed_out(self, namespace: Hashable) -> ChargeConflict:
        return ChargeConflict(
            f"could not charge quota in {namespace}: another charge in this namespace "
            "is still running"
        )

    def _run_batch(
        self,
        namespace: Hashable,
        waiters: list[Waiter[ChargeRequest, ChargePlan]],
        take_more: TakeMore[ChargeRequest, ChargePlan],
    ) -> None:
        """Answer every waiter: the ones whose deadline passed in the queue retryably, the
        others from one batch (or, should the batch fail for a reason other than a race,
        each on its own, so no waiter fails that would have passed alone)."""
        assert isinstance(namespace, str)
        pending = self._in_time(namespace, waiters)
        if not pending:
            return

        def more() -> list[Waiter[ChargeRequest, ChargePlan]]:
            taken = self._in_time(namespace, take_more())
            pending.extend(taken)
            return taken

        try:
            self._charge_batch(namespace, pending, more)
        except (ApiException, InvalidQuantity) as err:
            if len(pending) == 1:
                self._refuse(pending[0], err)
                return
            # kube-apiserver re-checks each waiter of a batch that failed; so do we, each
            # woken as soon as it is answered. The leading thread answers its own request only
            # after the last of them, and it may have been charged: all of them end by the
            # earliest deadline still ahead (the leader's, who queued first), so no charge is
            # answered after the API server gave up on it.
            waiters = self._in_time(namespace, pending)
            if not waiters:
                return
            until = min(waiter.end for waiter in waiters)
            log.warning(
                "a batch of %d charges in %s failed (%s); charging each alone",
                len(pending),
                namespace,
                err,
            )
            for waiter in sorted(waiters, key=lambda waiter: waiter.end):
                try:
                    self._charge_batch(namespace, [waiter], list, until)
                except Exception as single:  # answered to its own waiter
                    self._refuse(waiter, single)
        except Exception as err:  # a ChargeConflict, or a bug: answer all
            for waiter in pending:
                if not waiter.answered:
                    self._refuse(waiter, err)

    def _answer(self, waiter: Waiter[ChargeRequest, ChargePlan], plan: ChargePlan) -> None:
        waiter.answer = plan
        self._queues.done(waiter)

    def _refuse(self, waiter: Waiter[ChargeRequest, ChargePlan], err: BaseException) -> None:
        waiter.error = err
        self._queues.done(waiter)

    def _in_time(
        self, namespace: str, waiters: list[Waiter[ChargeRequest, ChargePlan]]
    ) -> list[Waiter[ChargeRequest, ChargePlan]]:
        """``waiters`` whose deadline has not passed; the others are answered retryably."""
        now = self._clock()
        for waiter in waiters:
            if waiter.end <= now:
                self._refuse(
                    waiter,
                    ChargeConflict(
                        f"could not charge quota in {namespace}: "
                        f"no charge within {self._deadline:g} s"
                    ),
                )
        return [w for w in waiters if w.error is None]

    def _charge_batch(
        self,
        namespace: str,
        waiters: list[Waiter[ChargeRequest, ChargePlan]],
        more: Callable[[], list[Waiter[ChargeRequest, ChargePlan]]],
        until: float = math.inf,
    ) -> None:
        """Decide ``waiters`` together and write each changed quota once; on a race
        (another process wrote first, a quota went away) read live, take along the
        waiters ``more`` gives (queued meanwhile: added to ``waiters``), decide again.
        Sets each waiter's answer, or raises for all of them. Calls end by the earliest
        deadline of ``waiters``, and by ``until``."""
        quotas: list[Obj] | None = self._fresh(namespace)
        live = False
        attempt = 0
        while attempt < self._attempts:
            # A waiter whose deadline passed (queued, or cutting the last call short) is
            # answered retryably on its own; the others go on, their calls bounded anew.
            waiters[:] = self._in_time(namespace, waiters)
            if not waiters:
                return
            end = min(min(waiter.end for waiter in waiters), until)
            try:
                if quotas is None:
                    quotas, live = self._live(namespace, end), True
                batch = plan_batch(quotas, [waiter.item for waiter in waiters])
                if batch.any_denied and not live:
                    quotas = None  # the cache may lag a release: decide again on live quotas
                    attempt += 1
                    continue
                self._write_all(namespace, batch, end)
            except PartialChargeLeft:
                raise  # never decide again on quotas that still hold a partial charge
            except Exception as err:
                if isinstance(err, ApiException) and (
                    apierrors.is_conflict(err) or apierrors.is_not_found(err)
                ):
                    # A stale resourceVersion (another process won) or a quota deleted
                    # meanwhile: read again and decide again.
                    time.sleep(random.uniform(0, CONFLICT_BACKOFF_SECONDS * (attempt + 1)))
                    quotas = None
                    more()
                    attempt += 1
                    continue
                if self._clock() >= min(waiter.end for waiter in waiters):
                    continue  # cut short by a waiter's deadline: that waiter leaves, not all
                raise
            for waiter, plan in zip(waiters, batch.plans, strict=True):
                self._answer(waiter, plan)
                if not plan.decision.allowed:
                    metrics.QUOTA_CHARGES.labels("exceeded").inc()
                elif plan.charges:
                    metrics.QUOTA_CHARGES.labels("charged").inc()
            return
        raise ChargeConflict(f"could not charge quota in {namespace}: too many concurrent writes")

    def _write_all(self, namespace: str, batch: BatchPlan, end: float) -> None:
        """Write each quota the batch changed, all or none: whatever stops the writes part-way
        (a conflict, a deadline, a timeout on the wire, a bug), what was written is taken
        back. (A write that timed out may have landed unseen: the usage reconciler
        releases that one.)"""
        written: list[str] = []
        try:
            for quota in batch.writes:
                self._write(namespace, quota, end)
                written.append(object_name(quota))
        except BaseException:
            self._release(namespace, {name: batch.charged[name] for name in written})
            raise

    def _release(self, namespace: str, amounts: Mapping[str, Mapping[str, int]]) -> None:
        """Take back what a batch wrote on each quota of an all-or-none write that failed
        part-way, within RELEASE_SECONDS of its own (the charge's deadline may be what
        stopped the writes). ``PartialChargeLeft`` when one could not be: deciding again
        on quotas that still hold it would charge the same creates twice, so the charge
        stops there and the usage reconciler releases what is left."""
        end = self._clock() + RELEASE_SECONDS
        for name, charged in amounts.items():
            for _ in range(self._attempts):
                try:
                    current = self._quotas.read(
                        namespace, name, timeout=self._time_left(end, namespace)
                    )
                    for resource, requested in charged.items():
                        left = max(resource_used(current, resource) - requested, 0)
                        current = with_used(current, desired_used(left, resource), resource)
                    self._write(namespace, current, end)
                    break
                except ApiException as err:
                    if apierrors.is_conflict(err):
                        continue
                    if apierrors.is_not_found(err):
                        break  # the quota is gone, and its charge with it
                    raise self._left_behind(namespace, name, err) from err
                except Exception as err:  # out of time, a timeout on the wire, a bad quantity
                    raise self._left_behind(namespace, name, err) from err
            else:
                raise self._left_behind(namespace, name, "too many concurrent writes")

    def _left_behind(self, namespace: str, name: str, cause: object) -> PartialChargeLeft:
        log.warning("could not release charge on quota %s/%s: %s", namespace, name, cause)
        return PartialChargeLeft(
            f"could not charge quota in {namespace}: "
            f"a partial charge on quota {name} could not be taken back"
        )
