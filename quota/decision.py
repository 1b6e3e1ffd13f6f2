"""One allow/deny result for every door, like controller-runtime's ``admission.Response``.

Limit checks, quota plans, admission handlers and PushReview all return a ``Decision``; the
admission adapter renders it as an AdmissionReview response, the PushReview adapter as
``status``. ``code`` and ``reason`` follow ``metav1.Status`` (403 Forbidden, 422 Invalid,
429 TooManyRequests, 503 ServiceUnavailable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

FORBIDDEN: Final = "Forbidden"
FORBIDDEN_CODE: Final = 403
SERVICE_UNAVAILABLE: Final = "ServiceUnavailable"
SERVICE_UNAVAILABLE_CODE: Final = 503
"""A retryable denial: clients retry a 503, and the condition passes on its own."""


@dataclass(frozen=True)
class Decision:
    """Allowed (possibly with a JSON Patch and warnings), or denied with code, reason, message."""

    allowed: bool
    patch: Sequence[Mapping[str, Any]] = ()
    code: int = 200
    reason: str = ""
    message: str = ""
    warnings: Sequence[str] = field(default_factory=tuple)

    @classmethod
    def allow(
        cls, patch: Sequence[Mapping[str, Any]] = (), warnings: Sequence[str] = ()
    ) -> Decision:
        return cls(allowed=True, patch=tuple(patch), warnings=tuple(warnings))

    @classmethod
    def deny(cls, message: str, *, code: int = FORBIDDEN_CODE, reason: str = FORBIDDEN) -> Decision:
        return cls(allowed=False, code=code, reason=reason, message=message)

    @property
    def label(self) -> str:
        """Short decision name for logs and metrics."""
        if not self.allowed:
            return "denied"
        return "patched" if self.patch else "allowed"
