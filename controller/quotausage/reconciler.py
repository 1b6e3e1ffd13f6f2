"""Keep ``status.used`` of ``alauda.io/imagestreams`` and ``alauda.io/image-storage`` equal to
what is stored: the ImageStreams of the namespace, and the bytes of the distinct blobs its
Images reference (``quota.storage``).

Raising usage is always safe and done at once. Lowering it releases charges, and a charge
whose object is still on its way to storage must not be released (that would let a
concurrent create over the limit). What the recount lost since this process last saw it
was deleted, so that much is released at once (storage only while no push is charged
and unrecorded: a push's charge counted on what was held); any other gap waits out ``grace``
(``quota.usagerelease`` has the rule and why it is safe). Both are judged on the values,
not on the quota's resourceVersion, which other writers (Kubernetes' own quota admission
and controller, for pods and the rest) change all the time. Only the leader reconciles, so
the memory is one process's; a new leader starts without it, and only the grace applies.

A recount seen is remembered with the resets of the caches it was taken from
(``kube.informer.Informer.resets``): a cache emptied by a 404 (an aggregated API
re-registering) or replaced by a relist drops the recount with nothing deleted, so a
recount seen before a reset is forgotten and only the grace applies to the drop.

Gaps and recounts seen are kept per namespace and only for the quotas that still exist
and still name a resource: a deleted quota or namespace leaves nothing behind.
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
from quota.imagerefs import images_by_digest
from quota.objects import Obj
from quota.quantity import InvalidQuantity
from quota.resourcequota import desired_used, has_usage, quota_matches, resource_used, with_used
from quota.resources import QUOTA_RESOURCES, RESOURCE_IMAGE_STORAGE, RESOURCE_IMAGESTREAMS
from quota.storage import namespace_blobs, storage_used
from quota.usagerelease import Gap, UsageStep, plan_usage

log = logging.getLogger(__name__)

DEFAULT_QUOTA_RELEASE_GRACE_SECONDS = 35.0
"""A charge no delete explains is released only after its gap outlasts the slowest
admission chain: the API server allows a webhook up to 30 s, so a create admitted (and
charged) now may be stored that much later; 5 s more for the watch to bring it to the
reconciler."""

CHARGES_DEPEND_ON_HELD = frozenset({RESOURCE_IMAGE_STORAGE})
"""Resources whose charge at admission depends on what else is held: a push is charged
only for the blobs nothing in the namespace holds yet, so a delete's drop is released at
once only while no charge is in flight (``quota.usagerelease``, step 2)."""

Key = tuple[str, str]
"""A quota's uid and one of its resources."""


class Cache(Protocol):
    def list(self, namespace: str | None = None) -> list[Obj]: ...


class CountedCache(Cache, Protocol):
    """A cache the recounts read, which says when objects left it with no delete."""

    @property
    def resets(self) -> int: ...


Resets = tuple[int, int]
"""The ImageStream and Image caches' resets, read after a recount."""


@dataclass(frozen=True)
class Seen:
    """A recount, and the caches' resets it was taken after."""

    recount: int
    resets: Resets


class QuotaStatusWriter(Protocol):
    """Conditional ResourceQuota status writes (``ApiException`` Conflict or NotFound on a
    race)."""

    def replace_status(self, quota: Obj) -> object:
        """What comes back (the written quota) is not needed here."""
        ...


def _uid(quota: Obj) -> str:
    uid: str = quota["metadata"].get("uid", "")
    return uid


def _used(quota: Obj, resource: str) -> int | None:
    """``status.used[resource]``; None when missing or unreadable (rewritten at once)."""
    if not has_usage(quota, resource):
        return None
    try:
        return resource_used(quota, resource)
    except InvalidQuantity:
        return None


def _resources(quota: Obj) -> list[str]:
    return [resource for resource in QUOTA_RESOURCES if quota_matches(quota, resource)]


class QuotaUsageReconciler:
    def __init__(
        self,
        writer: QuotaStatusWriter,
        quotas: Cache,
        imagestreams: CountedCache,
        images: CountedCache | None = None,
        *,
        grace_seconds: float = DEFAULT_QUOTA_RELEASE_GRACE_SECONDS,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        acquire: Callable[[], None] = lambda: None,
        blobs: Callable[[str], dict[str, int]] | None = None,
    ) -> None:
        """``imagestreams`` must keep each stream's status history digests, and ``images``
        (None: no Images, every storage recount is 0) each Image's blobs and children, for
        the storage recount. ``blobs``: a namespace's blobs read from caches that index
        them (the wiring's); without it, from every cached Image (fine for a test's few)."""
        self._writer = writer
        self._quotas = quotas
        self._imagestreams = imagestreams
        self._images = images
        self._grace = dt.timedelta(seconds=grace_seconds)
        self._now = now
        self._acquire = acquire
        self._blobs = blobs
        # namespace -> (quota uid, resource) -> gap, and -> the recount last seen. The work
        # queue never hands one namespace to two workers at once, so each inner dict has
        # one writer at a time.
        self._gaps: dict[str, dict[Key, Gap]] = {}
        self._seen: dict[str, dict[Key, Seen]] = {}

    def pending_releases(self) -> dict[str, int]:
        """Per namespace tracked, how many of its quotas wait out the grace to be lowered."""
        return {
            namespace: len({uid for uid, _ in gaps}) for namespace, gaps in list(self._gaps.items())
        }

    def remembered(self) -> dict[str, int]:
        """Per namespace tracked, how many of its quota resources have a recount seen."""
        return {namespace: len(seen) for namespace, seen in list(self._seen.items())}

    def _resets(self) -> Resets:
        return (self._imagestreams.resets, self._images.resets if self._images is not None else 0)

    def _recount(self, namespace: str, resource: str) -> int:
        streams = self._imagestreams.list(namespace)
        if resource == RESOURCE_IMAGESTREAMS:
            return len(streams)
        if self._blobs is not None:
            return storage_used(self._blobs(namespace))
        images = images_by_digest(self._images.list() if self._images is not None else [])
        return storage_used(namespace_blobs(namespace, streams, images))

    def reconcile(self, namespace: str) -> float | None:
        """Converge every matching quota of ``namespace``; seconds until a pending release."""
        quotas = [quota for quota in self._quotas.list(namespace) if _resources(quota)]
        recounts = {
            resource: self._recount(namespace, resource)
            for resource in {r for quota in quotas for r in _resources(quota)}
        }
        # After the recount: a reset that emptied a cache before it was read shows here.
        resets = self._resets()
        gaps = self._gaps.setdefault(namespace, {})
        seen = self._seen.setdefault(namespace, {})
        try:
            wanted = {(_uid(quota), resource) for quota in quotas for resource in _resources(quota)}
            for memory in (gaps, seen):
                for key in memory.keys() - wanted:
                    del memory[key]  # deleted, or no longer names the resource
            wait: float | None = None
            for quota in quotas:
                delay = self._converge(quota, recounts, resets, gaps, seen)
                if delay is not None:
                    wait = delay if wait is None else min(wait, delay)
            return wait
        finally:
            for memory, owner in ((gaps, self._gaps), (seen, self._seen)):
                if not memory:
                    owner.pop(namespace, None)

    def _converge(
        self,
        quota: Obj,
        recounts: dict[str, int],
        resets: Resets,
        gaps: dict[Key, Gap],
        seen: dict[Key, Seen],
    ) -> float | None:
        """Plan each resource of ``quota``, write what changes in one status write, and
        only then remember the recounts and gaps: a lost write (a conflict) is planned
        again from what was remembered before it. A recount seen before ``resets``
        changed is not used: its drop may be a cache emptied, not a delete."""
        uid, now = _uid(quota), self._now()
        writes: dict[str, str] = {}
        steps: dict[str, UsageStep] = {}
        for resource in _resources(quota):
            key = (uid, resource)
            last = seen.get(key)
            step = plan_usage(
                _used(quota, resource),
                recounts[resource],
                last.recount if last is not None and last.resets == resets else None,
                gaps.get(key),
                now,
                self._grace,
                charges_depend_on_held=resource in CHARGES_DEPEND_ON_HELD,
            )
            steps[resource] = step
            if step.write is not None:
                writes[resource] = desired_used(step.write, resource)
        if writes:
            self._write(quota, writes)
        waits = []
        for resource, step in steps.items():
            key = (uid, resource)
            seen[key] = Seen(recounts[resource], resets)
            if step.gap is None:
                gaps.pop(key, None)
            else:
                gaps[key] = step.gap
            if step.wait is not None:
                waits.append(step.wait)
        return min(waits, default=None)

    def _write(self, quota: Obj, values: dict[str, str]) -> None:
        meta = quota["metadata"]
        body = quota
        for resource, value in values.items():
            body = with_used(body, value, resource)
        self._acquire()
        try:
            self._writer.replace_status(body)
        except ApiException as err:
            # A stale resourceVersion, or the quota deleted meanwhile: look again.
            if apierrors.is_conflict(err) or apierrors.is_not_found(err):
                raise Requeue(f"quota {meta['namespace']}/{meta['name']} changed") from None
            raise
        for resource, value in values.items():
            log.info(
                "quota %s/%s: %s used set to %s", meta["namespace"], meta["name"], resource, value
            )
