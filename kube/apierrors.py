"""What an API error means, read the way apimachinery's ``errors.Is*`` read it.

The HTTP code alone confuses causes that call for different actions: 409 is both
``AlreadyExists`` (a create lost a race: read what won) and ``Conflict`` (an update carried
a stale resourceVersion: read again and retry), and 403 is both a denied request and a
namespace being deleted. The API server says which in the body's ``Status.reason`` and
``details.causes``; these helpers read it, and fall back to the code only when the body
has no reason (``ReasonForError`` then ``code`` in apimachinery's ``errors.go``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubernetes.client.exceptions import ApiException

# metav1.StatusReason values (k8s.io/apimachinery/pkg/apis/meta/v1/types.go).
NOT_FOUND: Final = "NotFound"
ALREADY_EXISTS: Final = "AlreadyExists"
CONFLICT: Final = "Conflict"
INVALID: Final = "Invalid"
FORBIDDEN: Final = "Forbidden"
GONE: Final = "Gone"
EXPIRED: Final = "Expired"

NAMESPACE_TERMINATING_CAUSE: Final = "NamespaceTerminating"
"""``v1.NamespaceTerminatingCause``: a create in a namespace being deleted."""

_REASON_BY_CODE: Final = {
    403: FORBIDDEN,
    404: NOT_FOUND,
    409: CONFLICT,
    410: GONE,
    422: INVALID,
}
"""The reason apimachinery assumes for a code when the body names none."""


def status_of(err: BaseException) -> dict[str, Any]:
    """The ``Status`` object in an ApiException's body; empty when there is none (a proxy's
    plain-text error, or not an API error at all)."""
    body = getattr(err, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return {}
    try:
        status = json.loads(body)
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def status_reason(status: Mapping[str, Any], code: object = None) -> str | None:
    """A ``Status`` object's reason, its code (or ``code``, the HTTP status) standing in for
    a missing one: the body of an ApiException, or the object of a watch's ERROR event."""
    named = status.get("reason")
    if isinstance(named, str) and named:
        return named
    if code is None:
        code = status.get("code")
    return _REASON_BY_CODE.get(code) if isinstance(code, int) else None


def reason(err: BaseException) -> str | None:
    """The error's ``StatusReason``; None for anything that is not an API error."""
    if not isinstance(err, ApiException):
        return None
    return status_reason(status_of(err), err.status or 0)


def is_not_found(err: BaseException) -> bool:
    return reason(err) == NOT_FOUND


def is_already_exists(err: BaseException) -> bool:
    return reason(err) == ALREADY_EXISTS


def is_conflict(err: BaseException) -> bool:
    """A write with a stale resourceVersion (or a patch's precondition) lost: read, retry."""
    return reason(err) == CONFLICT


def is_invalid(err: BaseException) -> bool:
    return reason(err) == INVALID


def is_forbidden(err: BaseException) -> bool:
    """Denied: by RBAC, by an admission webhook or plugin, or a namespace being deleted."""
    return reason(err) == FORBIDDEN


def is_gone(err: BaseException) -> bool:
    """A watch or list whose resourceVersion is too old (410, ``Expired`` or ``Gone``)."""
    return reason(err) in (GONE, EXPIRED)


def status_is_gone(status: Mapping[str, Any]) -> bool:
    """``is_gone`` for the ``Status`` a watch sends as an ERROR event, not as an error."""
    return status_reason(status) in (GONE, EXPIRED)


@dataclass(frozen=True)
class StatusCause:
    """One of a ``Status``'s ``details.causes`` (metav1.StatusCause); an absent or wrongly
    typed field is empty."""

    type: str
    """``StatusCause.Type``, which JSON spells ``reason`` (``json:"reason,omitempty"``)."""
    message: str = ""
    field: str = ""


def causes(err: BaseException) -> list[StatusCause]:
    """The causes an API error's body gives, in order; entries that are not objects are
    skipped, and anything that is not an API error has none."""
    if not isinstance(err, ApiException):
        return []
    details = status_of(err).get("details")
    raw = details.get("causes") if isinstance(details, dict) else None
    if not isinstance(raw, list):
        return []
    return [
        StatusCause(
            _text(cause.get("reason")), _text(cause.get("message")), _text(cause.get("field"))
        )
        for cause in raw
        if isinstance(cause, dict)
    ]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def is_namespace_terminating(err: BaseException) -> bool:
    """A create refused because its namespace is being deleted: nothing to retry."""
    return is_forbidden(err) and any(
        cause.type == NAMESPACE_TERMINATING_CAUSE for cause in causes(err)
    )


def names_object(err: BaseException, name: str, resource: str, *, group: str | None = None) -> bool:
    """Whether a NotFound names the object ``name`` of ``resource`` (of API ``group``, when
    given) (apimachinery's ``NewNotFound`` fills ``details``), not a resource the API server
    does not serve, whose not-found handler leaves the details empty."""
    if not is_not_found(err):
        return False
    details = status_of(err).get("details")
    return (
        isinstance(details, dict)
        and details.get("name") == name
        and details.get("kind") == resource
        and (group is None or details.get("group", "") == group)
    )
