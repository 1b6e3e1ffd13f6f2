"""Judge a push with the same rules as ``kubectl apply``: limits, then quota.

Gather the stream's usage and the LimitRanges from the watch caches, decide with the pure
``check_push_limits``, and for a new repository ask the quota whether it has room for the
ImageStream the push will create. Nothing is charged here: the charge happens when the
ImageStream itself is created.
"""

from __future__ import annotations

from typing import Protocol

from quota.decision import Decision
from quota.limitchecks import check_push_limits
from quota.limits import Limit, effective_limits
from quota.measure import StreamUsage
from quota.objects import Obj
from quota.push import Push
from quota.resourcequota import ChargePlan
from quota.resources import IMAGE_STORAGE
from serving.versionmemo import VersionMemo


class PushReads(Protocol):
    """What the push rules read: what the repository's ImageStream counts (None: no
    stream), and the LimitRanges."""

    def imagestream_usage(self, namespace: str, name: str) -> StreamUsage | None: ...
    def limit_ranges_in(self, namespace: str) -> list[Obj]: ...


class QuotaRoom(Protocol):
    """Whether the namespace's ImageStream quota has room for one more (no write)."""

    def judge(self, namespace: str) -> ChargePlan: ...


class PushJudge:
    def __init__(self, caches: PushReads, quota: QuotaRoom) -> None:
        self._caches = caches
        self._quota = quota
        self._limits = VersionMemo(effective_limits)

    def judge(self, push: Push) -> Decision:
        usage = self._caches.imagestream_usage(push.namespace, push.repository)
        limits = self._limits(self._caches.limit_ranges_in(push.namespace))
        decision = check_push_limits(push, usage, limits)
        if not decision.allowed or usage is not None:
            return decision
        return self._quota.judge(push.namespace).decision

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
