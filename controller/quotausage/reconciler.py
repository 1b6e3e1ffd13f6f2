"""Keep ``status.used["alauda.io/imagestreams"]`` equal to the ImageStreams that exist.

Raising usage is always safe and done at once. Lowering it releases charges, and a charge
whose ImageStream is still on its way to storage must not be released (that would let a
concurrent create over the limit), so a lower value is written only after the same gap
(the same ``used`` value and the same count) has been observed for ``grace`` seconds:
longer than an admitted create can take to land. The gap is judged on those two values,
not on the quota's resourceVersion, which other writers (Kubernetes' own quota admission
and controller, for pods and the rest) change all the time.

Gaps are kept per namespace and only for the quotas that still exist and still name the
resource: a deleted quota or namespace leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kubernetes.client.exceptions import ApiException

from kube import apierrors
from kube.requeue import Requeue
from quota.objects import Obj
from quota.quantity import InvalidQuantity
from quota.resourcequota import imagestreams_used, quota_matches, used_update, with_used
from quota.resources import RESOURCE_IMAGESTREAMS

log = logging.getLogger(__name__)

DEFAULT_QUOTA_RELEASE_GRACE_SECONDS = 35.0
"""A charge is released only after its gap outlasts the slowest admission chain: the API
server allows a webhook up to 30 s, so a create admitted (and charged) now may be stored
that much later; 5 s more for the watch to bring it to the reconciler."""


class Cache(Protocol):
    def list(self, namespace: str | None = None) -> list[Obj]: ...


class QuotaStatusWriter(Protocol):
    """Conditional ResourceQuota status writes (``ApiException`` Conflict or NotFound on a
    race)."""

    def replace_status(self, quota: Obj) -> object:
        """What comes back (the written quota) is not needed here."""
        ...


@dataclass(frozen=True)
class _Gap:
    used: int
    count: int
    since: dt.datetime


def _uid(quota: Obj) -> str:
    uid: str = quota["metadata"].get("uid", "")
    return uid


def _used(quota: Obj) -> int | None:
    try:
        return imagestreams_used(quota)
    except InvalidQuantity:
        return None  # rewritten at once


class QuotaUsageReconciler:
    def __init__(
        self,
        writer: QuotaStatusWriter,
        quotas: Cache,
        imagestreams: Cache,
        *,
        grace_seconds: float = DEFAULT_QUOTA_RELEASE_GRACE_SECONDS,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        acquire: Callable[[], None] = lambda: None,
    ) -> None:
        self._writer = writer
        self._quotas = quotas
        self._imagestreams = imagestreams
        self._grace = dt.timedelta(seconds=grace_seconds)
        self._now = now
        self._acquire = acquire
        # namespace -> quota uid -> gap. The work queue never hands one namespace to two
        # workers at once, so each inner dict has one writer at a time.
        self._gaps: dict[str, dict[str, _Gap]] = {}

    def pending_releases(self) -> dict[str, int]:
        """Per namespace tracked, how many of its quotas wait out the grace to be lowered."""
        return {namespace: len(gaps) for namespace, gaps in list(self._gaps.items())}

    def reconcile(self, namespace: str) -> float | None:
        """Converge every matching quota of ``namespace``; seconds until a pending release."""
        count = len(self._imagestreams.list(namespace))
        quotas = [quota for quota in self._quotas.list(namespace) if quota_matches(quota)]
        gaps = self._gaps.setdefault(namespace, {})
        try:
            for uid in gaps.keys() - {_uid(quota) for quota in quotas}:
                del gaps[uid]  # deleted, or no longer names the resource
            wait: float | None = None
            for quota in quotas:
                delay = self._converge(quota, count, gaps)
                if delay is not None:
                    wait = delay if wait is None else min(wait, delay)
            return wait
        finally:
            if not gaps:
                self._gaps.pop(namespace, None)

    def _converge(self, quota: Obj, count: int, gaps: dict[str, _Gap]) -> float | None:
        uid = _uid(quota)
        value = used_update(quota, count)
        if value is None:
            gaps.pop(uid, None)
            return None
        used = _used(quota)
        if used is not None and count < used:
            gap = gaps.get(uid)
            now = self._now()
            if gap is None or (gap.used, gap.count) != (used, count):
                gaps[uid] = _Gap(used, count, now)
                return self._grace.total_seconds()
            if now - gap.since < self._grace:
                return (gap.since + self._grace - now).total_seconds()
        self._write(quota, value)
        gaps.pop(uid, None)
        return None

    def _write(self, quota: Obj, value: str) -> None:
        meta = quota["metadata"]
        self._acquire()
        try:
            self._writer.replace_status(with_used(quota, value))
        except ApiException as err:
            # A stale resourceVersion, or the quota deleted meanwhile: look again.
            if apierrors.is_conflict(err) or apierrors.is_not_found(err):
                raise Requeue(f"quota {meta['namespace']}/{meta['name']} changed") from None
            raise
        log.info(
            "quota %s/%s: %s used set to %s",
            meta["namespace"],
            meta["name"],
            RESOURCE_IMAGESTREAMS,
            value,
        )
