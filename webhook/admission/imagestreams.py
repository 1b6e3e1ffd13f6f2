"""``/validate/imagestreams``: LimitRange limits on every write, quota on create.

``imagestreams`` and ``imagestreams/status`` both come here: tags live in spec and in
status, image history in status. Gather what the rules need from the watch caches (and,
for an image a storage limit needs but the cache cannot size, one live read), ask
``quota`` for one decision, then act: charge quota, only on a real (not dry-run) create.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

from quota.decision import Cause, Decision
from quota.limitchecks import ImageSize, Unsized, check_stream_write, images_to_look_up
from quota.limits import EffectiveLimits, effective_limits
from quota.measure import stream_usage
from quota.objects import Obj, object_name
from quota.resourcequota import ChargePlan
from quota.resources import RESOURCE_IMAGESTREAMS
from serving.quotacharge import ChargeConflict
from serving.versionmemo import VersionMemo
from webhook import metrics
from webhook.admission.imagelookup import ImageLookupFailed
from webhook.admission.review import AdmissionRequest

log = logging.getLogger(__name__)

NOT_READY_MESSAGE = (
    "the registry policy service is starting and its caches are not synced yet; retry"
)
IMAGE_LOOKUP_TIMEOUT_SECONDS: Final = 1.0
"""One live Image GET at most; it normally takes milliseconds."""
IMAGE_LOOKUP_BUDGET_SECONDS: Final = 1.5
"""All live Image GETs of one write: the imagestreams webhook's 10 s timeout less the
quota charge's 8 s deadline, with 0.5 s left for everything else."""
MAX_IMAGE_LOOKUPS: Final = 16
"""Live Image GETs per write at most: a registry's status write adds one image per tag it
updates; a bulk write with more the cache has not seen is denied retryably and passes once
the cache catches up, so no write can turn into a storm of GETs."""


class PolicyReads(Protocol):
    """What the limit rules read: the namespace's LimitRanges and image sizes by digest."""

    def not_ready(self) -> str | None: ...
    def limit_ranges_in(self, namespace: str) -> list[Obj]: ...
    def image_size(self, digest: str) -> ImageSize: ...


class ImageLookup(Protocol):
    """One live read of the Image describing ``digest``, as its size or why there is none;
    ``ImageLookupFailed`` when the API server cannot say (``imagelookup.ImageClient``)."""

    def image_size(self, digest: str, *, timeout: float) -> ImageSize: ...


class QuotaCharges(Protocol):
    """The quota (here, the ImageStream quota: one more): judged without writing, or
    charged; PushReview asks the same of ``alauda.io/image-storage``."""

    def judge(
        self, namespace: str, requested: int = 1, resource: str = RESOURCE_IMAGESTREAMS
    ) -> ChargePlan: ...

    def charge(
        self, namespace: str, requested: int = 1, resource: str = RESOURCE_IMAGESTREAMS
    ) -> ChargePlan: ...


def not_ready(message: str = NOT_READY_MESSAGE) -> Decision:
    """A retryable denial: never a silent allow while the rules cannot be read."""
    return Decision.deny(message, Cause.NOT_READY)


class ImageStreamValidator:
    def __init__(
        self,
        caches: PolicyReads,
        charger: QuotaCharges,
        images: ImageLookup,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._caches = caches
        self._charger = charger
        self._images = images
        self._clock = clock
        self._limits = VersionMemo(effective_limits)

    def __call__(self, request: AdmissionRequest) -> Decision:
        if self._caches.not_ready():
            return not_ready()
        stream = request.object
        if stream is None:
            return Decision.allow()
        namespace = request.namespace
        old = request.old_object if request.operation == "UPDATE" else None

        # Gather.
        limits = self._limits(self._caches.limit_ranges_in(namespace))
        for problem in limits.problems:
            log.warning("ignoring a broken limit in %s: %s", namespace, problem)
        before = None if old is None else stream_usage(old)
        after = stream_usage(stream)  # measured once, for the new images and the counts
        added = after.images - before.images if before is not None else after.images
        sizes = {digest: self._caches.image_size(digest) for digest in added}
        self._look_up(sizes, limits)
        # Decide.
        name = request.name or object_name(stream)
        decision = check_stream_write(
            name,
            None if before is None else before.counts,
            after.counts,
            sizes,
            limits,
        )
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
            return Decision.deny(f"{err}; retry", Cause.CHARGE_CONFLICT)
        return plan.decision

    def _look_up(self, sizes: dict[str, ImageSize], limits: EffectiveLimits) -> None:
        """Read live, in digest order, the Images a storage limit needs and the cache
        cannot size, and put their sizes into ``sizes``; those left unread (a failed GET,
        or past the cap or the time budget) become ``Unsized.UNREAD``. Stops at the first
        image that stays unsized: the verdict is a retryable denial from there on."""
        wanted = images_to_look_up(sizes, limits)
        end = self._clock() + IMAGE_LOOKUP_BUDGET_SECONDS
        for done, digest in enumerate(wanted):
            left = end - self._clock()
            if done >= MAX_IMAGE_LOOKUPS or left <= 0:
                sizes.update(dict.fromkeys(wanted[done:], Unsized.UNREAD))
                return
            try:
                size = self._images.image_size(
                    digest, timeout=min(IMAGE_LOOKUP_TIMEOUT_SECONDS, left)
                )
            except ImageLookupFailed as err:
                metrics.IMAGE_LOOKUPS.labels("failed").inc()
                log.warning("could not look up image %s: %s", digest, err)
                sizes[digest] = Unsized.UNREAD
                return
            missing = size is Unsized.NO_IMAGE
            metrics.IMAGE_LOOKUPS.labels("not_found" if missing else "found").inc()
            sizes[digest] = size
            if isinstance(size, Unsized):
                return
