"""Judge a push with the same rules as ``kubectl apply``: limits, then quota.

Gather the stream's usage and the LimitRanges from the watch caches, decide with the pure
``check_push_limits``, for a new repository ask the quota whether it has room for the
ImageStream the push will create, and ask ``alauda.io/image-storage`` whether it has room
for the push's new bytes: the blobs of every image it names that the namespace's Images do
not hold yet (``quota.storage``). ``judge`` charges nothing (PushReview, and the front
door's decision before it writes); the front door charges the storage with
``charge_storage`` once it acts, and the ImageStream's charge happens when the ImageStream
itself is created.
"""

from __future__ import annotations

from typing import Protocol

from quota.decision import Cause, Decision
from quota.limitchecks import check_push_limits
from quota.limits import Limit, effective_limits
from quota.measure import StreamUsage
from quota.objects import Obj
from quota.push import Push
from quota.resourcequota import ChargePlan
from quota.resources import IMAGE_STORAGE, RESOURCE_IMAGE_STORAGE, RESOURCE_IMAGESTREAMS
from quota.storage import new_bytes
from serving.quotacharge import ChargeConflict
from serving.versionmemo import VersionMemo


class PushReads(Protocol):
    """What the push rules read: what the repository's ImageStream counts (None: no
    stream), and the LimitRanges."""

    def imagestream_usage(self, namespace: str, name: str) -> StreamUsage | None: ...
    def limit_ranges_in(self, namespace: str) -> list[Obj]: ...
    def namespace_blobs(self, namespace: str) -> dict[str, int]:
        """The blobs the namespace's Images hold, with their sizes."""
        ...


class QuotaRoom(Protocol):
    """Whether the namespace's quotas have room for ``requested`` more of ``resource``
    (``judge``, no write), or that room taken (``charge``: ``ChargeConflict`` when no
    charge could be written in time)."""

    def judge(
        self, namespace: str, requested: int = 1, resource: str = RESOURCE_IMAGESTREAMS
    ) -> ChargePlan: ...

    def charge(
        self, namespace: str, requested: int = 1, resource: str = RESOURCE_IMAGESTREAMS
    ) -> ChargePlan: ...


class PushJudge:
    def __init__(self, caches: PushReads, quota: QuotaRoom) -> None:
        self._caches = caches
        self._quota = quota
        self._limits = VersionMemo(effective_limits)

    def judge(self, push: Push) -> Decision:
        usage = self._caches.imagestream_usage(push.namespace, push.repository)
        limits = self._limits(self._caches.limit_ranges_in(push.namespace))
        decision = check_push_limits(push, usage, limits)
        if not decision.allowed:
            return decision
        if usage is None:
            decision = self._quota.judge(push.namespace).decision
            if not decision.allowed:
                return decision
        return self._quota.judge(
            push.namespace, self.new_bytes(push), RESOURCE_IMAGE_STORAGE
        ).decision

    def new_bytes(self, push: Push) -> int:
        """What the push adds to ``alauda.io/image-storage``: its blobs the namespace does
        not hold yet."""
        return new_bytes(push.blobs(), self._caches.namespace_blobs(push.namespace))

    def charge_storage(self, push: Push) -> Decision:
        """Charge the push's new bytes to the namespace's ``alauda.io/image-storage``
        quotas, atomically (``serving.quotacharge``): a push of no new bytes charges
        nothing and needs no room. The denial reads like native quota."""
        try:
            plan = self._quota.charge(push.namespace, self.new_bytes(push), RESOURCE_IMAGE_STORAGE)
        except ChargeConflict as err:
            return Decision.deny(f"{err}; retry", Cause.CHARGE_CONFLICT)
        return plan.decision

    def upload_room(self, namespace: str, repository: str) -> Decision:
        """Whether a blob upload may start in ``repository``: where its ImageStream exists,
        or where the quota has room for the one its first push would create. The rule
        ``judge`` applies to a push into a new repository, and its message; the limits
        are judged when a manifest names the blobs."""
        if self._caches.imagestream_usage(namespace, repository) is not None:
            return Decision.allow()
        return self._quota.judge(namespace).decision

    def largest_image(self, namespace: str) -> Limit | None:
        """The namespace's ``alauda.io/Image`` storage limit (the smallest max of its
        LimitRanges), None without one: no blob larger than that fits an image it admits."""
        return self._limits(self._caches.limit_ranges_in(namespace)).get(IMAGE_STORAGE)
