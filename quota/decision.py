"""One allow/deny result for every door, like controller-runtime's ``admission.Response``.

Limit checks, quota plans, admission handlers and PushReview all return a ``Decision``; the
admission adapter renders it as an AdmissionReview response, the PushReview adapter as
``status``, the front door as a registry error. A denial carries its ``Cause`` (which rule,
or which condition kept the rules from judging) and whether the same request may simply be
retried, as fields: no caller learns either from the message or the code. ``code`` and
``reason`` follow ``metav1.Status`` (403 Forbidden, 422 Invalid, 429 TooManyRequests,
500 InternalError, 503 ServiceUnavailable) and follow from the cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

FORBIDDEN: Final = "Forbidden"
FORBIDDEN_CODE: Final = 403
INVALID: Final = "Invalid"
INVALID_CODE: Final = 422
TOO_MANY_REQUESTS: Final = "TooManyRequests"
TOO_MANY_REQUESTS_CODE: Final = 429
INTERNAL_ERROR: Final = "InternalError"
INTERNAL_ERROR_CODE: Final = 500
SERVICE_UNAVAILABLE: Final = "ServiceUnavailable"
SERVICE_UNAVAILABLE_CODE: Final = 503
"""A retryable denial: clients retry a 503, and the condition passes on its own."""


class Cause(StrEnum):
    """Why a request is denied; the value is the ``StatusCause`` type the admission answer
    carries in ``details.causes``, so a client of the API server (the front door's records)
    learns the rule from the Status, not from its message."""

    IMAGE_STORAGE_LIMIT = "ImageStorageLimitExceeded"
    IMAGE_TAGS_LIMIT = "ImageTagsLimitExceeded"
    IMAGES_LIMIT = "ImagesLimitExceeded"
    QUOTA_EXCEEDED = "QuotaExceeded"
    QUOTA_UNKNOWN = "QuotaUnknown"
    """A matching quota whose usage is not computed yet: Kubernetes answers that 403
    Forbidden (``status unknown for quota``), and so do we; yet it is retryable (the
    contract): the controller counts the usage at once, and the same request then passes."""
    IMAGE_SIZE_UNKNOWN = "ImageSizeUnknown"
    NOT_READY = "NotReady"
    """The caches the rules read have not synced yet."""
    CHARGE_CONFLICT = "ChargeConflict"
    """No quota charge could be written in time: too many concurrent writers."""
    INVALID_POLICY = "InvalidPolicy"
    INTERNAL_ERROR = "InternalError"
    REFUSED = "Refused"
    """Refused by someone else than these rules (RBAC, schema validation, another
    webhook): only the front door's records meet it, from the API server."""

    @property
    def code(self) -> int:
        return _ANSWERS[self][0]

    @property
    def reason(self) -> str:
        return _ANSWERS[self][1]

    @property
    def retryable(self) -> bool:
        """The same request may pass if sent again: the condition passes on its own."""
        return self is Cause.QUOTA_UNKNOWN or _ANSWERS[self][0] in (
            TOO_MANY_REQUESTS_CODE,
            INTERNAL_ERROR_CODE,
            SERVICE_UNAVAILABLE_CODE,
        )


_ANSWERS: Final[Mapping[Cause, tuple[int, str]]] = {
    Cause.IMAGE_STORAGE_LIMIT: (FORBIDDEN_CODE, FORBIDDEN),
    Cause.IMAGE_TAGS_LIMIT: (FORBIDDEN_CODE, FORBIDDEN),
    Cause.IMAGES_LIMIT: (FORBIDDEN_CODE, FORBIDDEN),
    Cause.QUOTA_EXCEEDED: (FORBIDDEN_CODE, FORBIDDEN),
    Cause.QUOTA_UNKNOWN: (FORBIDDEN_CODE, FORBIDDEN),
    Cause.IMAGE_SIZE_UNKNOWN: (SERVICE_UNAVAILABLE_CODE, SERVICE_UNAVAILABLE),
    Cause.NOT_READY: (SERVICE_UNAVAILABLE_CODE, SERVICE_UNAVAILABLE),
    Cause.CHARGE_CONFLICT: (TOO_MANY_REQUESTS_CODE, TOO_MANY_REQUESTS),
    Cause.INVALID_POLICY: (INVALID_CODE, INVALID),
    Cause.INTERNAL_ERROR: (INTERNAL_ERROR_CODE, INTERNAL_ERROR),
    Cause.REFUSED: (FORBIDDEN_CODE, FORBIDDEN),
}
"""The ``metav1.Status`` code and reason each cause is answered with."""


@dataclass(frozen=True)
class Decision:
    """Allowed (possibly with a JSON Patch and warnings), or denied with its cause, whether
    it is retryable, and the Status code, reason and message."""

    allowed: bool
    patch: Sequence[Mapping[str, Any]] = ()
    code: int = 200
    reason: str = ""
    message: str = ""
    warnings: Sequence[str] = field(default_factory=tuple)
    cause: Cause | None = None
    """None when allowed."""
    retryable: bool = False
    """Denied for now only: the same request, sent again, may pass."""

    @classmethod
    def allow(
        cls, patch: Sequence[Mapping[str, Any]] = (), warnings: Sequence[str] = ()
    ) -> Decision:
        return cls(allowed=True, patch=tuple(patch), warnings=tuple(warnings))

    @classmethod
    def deny(cls, message: str, cause: Cause) -> Decision:
        return cls(
            allowed=False,
            code=cause.code,
            reason=cause.reason,
            message=message,
            cause=cause,
            retryable=cause.retryable,
        )

    @property
    def label(self) -> str:
        """Short decision name for logs and metrics."""
        if not self.allowed:
            return "denied"
        return "patched" if self.patch else "allowed"
