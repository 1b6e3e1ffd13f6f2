"""Judge a push with the same rules as ``kubectl apply``: limits, then quota."""

from __future__ import annotations

from dataclasses import dataclass

from quota.limitchecks import check_push_limits
from quota.limits import effective_limits
from webhook.caches import WebhookCaches
from webhook.pushreview.review import PushRequest
from webhook.quotacharge import QuotaCharger


@dataclass(frozen=True)
class PushVerdict:
    allowed: bool
    reason: str = ""
    message: str = ""


class PushJudge:
    def __init__(self, caches: WebhookCaches, charger: QuotaCharger) -> None:
        self._caches = caches
        self._charger = charger

    def judge(self, push: PushRequest) -> PushVerdict:
        stream = self._caches.imagestream(push.namespace, push.repository)
        limits = effective_limits(self._caches.limit_ranges_in(push.namespace))
        verdict = check_push_limits(
            push.repository, stream, push.tag, push.digest, push.manifest, limits
        )
        if not verdict.allowed:
            return PushVerdict(False, verdict.reason, verdict.message)
        if stream is None:
            # A new repository becomes a new ImageStream: quota must have room for it. The
            # charge itself happens when the ImageStream is created.
            plan = self._charger.judge(push.namespace)
            if not plan.allowed:
                return PushVerdict(False, plan.reason, plan.message)
        return PushVerdict(True)
