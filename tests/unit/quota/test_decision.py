"""The one allow/deny result: constructors and the label logs and metrics use."""

from __future__ import annotations

import pytest

from quota.decision import Cause, Decision


def test_decision_labels() -> None:
    assert Decision.allow().label == "allowed"
    assert Decision.allow(patch=[{"op": "remove", "path": "/a"}]).label == "patched"


def test_a_denial_carries_its_cause_and_the_status_the_cause_is_answered_with() -> None:
    assert Decision.deny("no", Cause.QUOTA_EXCEEDED) == Decision(
        False, code=403, reason="Forbidden", message="no", cause=Cause.QUOTA_EXCEEDED
    )
    invalid = Decision.deny("bad", Cause.INVALID_POLICY)
    assert (invalid.allowed, invalid.code, invalid.reason) == (False, 422, "Invalid")


@pytest.mark.parametrize(
    ("cause", "code", "retryable"),
    [
        (Cause.IMAGE_STORAGE_LIMIT, 403, False),
        (Cause.IMAGE_TAGS_LIMIT, 403, False),
        (Cause.IMAGES_LIMIT, 403, False),
        (Cause.QUOTA_EXCEEDED, 403, False),
        # Forbidden, as Kubernetes answers it, yet it passes once the usage is counted
        (Cause.QUOTA_UNKNOWN, 403, True),
        (Cause.IMAGE_SIZE_UNKNOWN, 503, True),
        (Cause.NOT_READY, 503, True),
        (Cause.CHARGE_CONFLICT, 429, True),
        (Cause.INVALID_POLICY, 422, False),
        (Cause.INTERNAL_ERROR, 500, True),
        (Cause.REFUSED, 403, False),
    ],
)
def test_whether_a_denial_is_retryable_is_a_field_set_by_its_cause(
    cause: Cause, code: int, retryable: bool
) -> None:
    decision = Decision.deny("m", cause)
    assert (decision.code, decision.retryable, decision.cause) == (code, retryable, cause)


def test_an_allow_has_no_cause() -> None:
    assert Decision.allow().cause is None and not Decision.allow().retryable


def test_an_allow_keeps_its_patch_and_warnings_as_tuples() -> None:
    decision = Decision.allow(patch=[{"op": "add", "path": "/a", "value": 1}], warnings=["w"])
    assert decision.patch == ({"op": "add", "path": "/a", "value": 1},)
    assert decision.warnings == ("w",)
    assert decision.code == 200 and decision.message == ""
