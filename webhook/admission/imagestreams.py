"""``/validate/imagestreams``: LimitRange limits on every write, quota on create.

``imagestreams`` and ``imagestreams/status`` both come here: tags live in spec and in
status, image history in status. Quota is charged only by a real (not dry-run) create.
"""

from __future__ import annotations

import logging

from quota.limitchecks import image_size_violations, stream_violations, verdict_of
from quota.limits import effective_limits
from quota.measure import new_image_digests, recorded_image_size, stream_usage
from quota.objects import object_name
from webhook.admission import AdmissionRequest, Decision
from webhook.caches import WebhookCaches
from webhook.quotacharge import ChargeConflict, QuotaCharger

log = logging.getLogger(__name__)

NOT_READY_MESSAGE = (
    "the registry policy service is starting and its caches are not synced yet; retry"
)


def not_ready(message: str = NOT_READY_MESSAGE) -> Decision:
    """A retryable denial: never a silent allow while the rules cannot be read."""
    return Decision.deny(message, code=503, reason="ServiceUnavailable")


class ImageStreamValidator:
    def __init__(self, caches: WebhookCaches, charger: QuotaCharger) -> None:
        self._caches = caches
        self._charger = charger

    def __call__(self, request: AdmissionRequest) -> Decision:
        if self._caches.not_ready():
            return not_ready()
        stream = request.object
        if stream is None:
            return Decision.allow()
        namespace = request.namespace
        name = request.name or object_name(stream)
        old = request.old_object if request.operation == "UPDATE" else None

        limits = effective_limits(self._caches.limit_ranges_in(namespace))
        for problem in limits.problems:
            log.warning("ignoring a broken limit in %s: %s", namespace, problem)
        new_counts = stream_usage(stream).counts
        old_counts = stream_usage(old).counts if old is not None else None
        size_violations = tuple(
            violation
            for digest in sorted(new_image_digests(old, stream))
            if (size := recorded_image_size(self._caches.image(digest))) is not None
            for violation in image_size_violations(name, size, limits)
        )
        verdict = verdict_of(
            size_violations, stream_violations(name, old_counts, new_counts, limits)
        )
        if not verdict.allowed:
            return Decision.deny(verdict.message, code=verdict.code, reason=verdict.reason)

        if request.operation != "CREATE" or request.sub_resource:
            return Decision.allow()
        try:
            plan = (
                self._charger.judge(namespace)
                if request.dry_run
                else self._charger.charge(namespace)
            )
        except ChargeConflict as err:
            return Decision.deny(f"{err}; retry", code=429, reason="TooManyRequests")
        if not plan.allowed:
            return Decision.deny(plan.message, code=plan.code, reason=plan.reason)
        return Decision.allow()
