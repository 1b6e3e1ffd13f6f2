"""``/validate/policies``: refuse LimitRange and ResourceQuota entries that cannot work."""

from __future__ import annotations

from quota.decision import Cause, Decision
from quota.fielderrors import FieldError
from quota.objects import object_name
from quota.policy import invalid_message, names_alauda, validate_policy
from webhook.admission.review import AdmissionRequest

KINDS = frozenset({"LimitRange", "ResourceQuota"})


def validate(request: AdmissionRequest) -> Decision:
    obj = request.object
    kind = request.kind.kind
    if obj is None or kind not in KINDS or not names_alauda(obj, kind):
        return Decision.allow()
    errors: list[FieldError] = validate_policy(obj, kind)
    if not errors:
        return Decision.allow()
    name = request.name or object_name(obj)
    return Decision.deny(invalid_message(kind, name, errors), Cause.INVALID_POLICY)
