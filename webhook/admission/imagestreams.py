"""``/validate/imagestreams``: LimitRange limits on every write, quota on create.

``imagestreams`` and ``imagestreams/status`` both come here: tags live in spec and in
status, image history in status. Gather what the rules need from the watch caches, ask
``quota`` for one decision, then act: charge quota, only on a real (not dry-run) create.
"""

from __future__ import annotations

import logging
from typing import Protocol

from quota.decision import Decision
from quota.limitchecks import check_stream_write
from quota.limits import effective_limits
from quota.measure import new_image_digests
from quota.objects import Obj, object_name
from quota.resourcequota import ChargePlan
from webhook.admission.review import AdmissionRequest
from webhook.quotacharge import ChargeConflict

log = logging.getLogger(__name__)

NOT_READY_MESSAGE = (
    "the registry policy service is starting and its caches are not synced yet; retry"
)


class PolicyReads(Protocol):
    """What the limit rules read: the namespace's LimitRanges and Images by digest."""

    def not_ready(self) -> str | None: ...
    def limit_ranges_in(self, namespace: str) -> list[Obj]: ...
    def image(self, digest: str) -> Obj | None: ...


class QuotaCharges(Protocol):
    """The ImageStream quota: judged without writing, or charged."""

    def judge(self, namespace: str) -> ChargePlan: ...
    def charge(self, namespace: str) -> ChargePlan: ...


def not_ready(message: str = NOT_READY_MESSAGE) -> Decision:
    """A retryable denial: never a silent allow while the rules cannot be read."""
    return Decision.deny(message, code=503, reason="ServiceUnavailable")


class ImageStreamValidator:
    def __init__(self, caches: PolicyReads, charger: QuotaCharges) -> None:
        self._caches = caches
        self._charger = charger

    def __call__(self, request: AdmissionRequest) -> Decision:
        if self._caches.not_ready():
            return not_ready()
        stream = request.object
        if stream is None:
            return Decision.allow()
        namespace = request.namespace
        old = request.old_object if request.operation == "UPDATE" else None

        # Gather.
        limits = effective_limits(self._caches.limit_ranges_in(namespace))
        for problem in limits.problems:
            log.warning("ignoring a broken limit in %s: %s", namespace, problem)
        images = {digest: self._caches.image(digest) for digest in new_image_digests(old, stream)}
        # Decide.
        name = request.name or object_name(stream)
        decision = check_stream_write(name, old, stream, images, limits)
        if not decision.allowed or request.operation != "CREATE" or request.sub_resource:
            return decision
        # Act: a create takes room in the namespace's ImageStream quota.
        try:
            plan = (
                self._charger.judge(namespace)
                if request.dry_run
                else self._charger.charge(namespace)
            )
        except ChargeConflict as err:
            return Decision.deny(f"{err}; retry", code=429, reason="TooManyRequests")
        return plan.decision
