"""The admission endpoints the service serves, and the handler type they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quota.decision import Decision
from webhook.admission.review import AdmissionRequest

Handler = Callable[[AdmissionRequest], Decision]

MUTATE_SERVICEACCOUNTS = "/mutate/serviceaccounts"
VALIDATE_IMAGESTREAMS = "/validate/imagestreams"
VALIDATE_POLICIES = "/validate/policies"


@dataclass(frozen=True)
class AdmissionEndpoint:
    """One admission path and the handler behind it.

    ``fail_open`` says what a handler crash answers: mutating endpoints whose work a
    reconciler heals allow (with a warning); validating endpoints deny, retryably.
    """

    path: str
    handler: Handler
    mutating: bool
    fail_open: bool = False

    @property
    def name(self) -> str:
        return self.path.strip("/").replace("/", "_")
