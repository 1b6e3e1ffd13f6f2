"""``/validate/policies``: broken alauda.io entries get a 422 naming the field, others pass."""

from __future__ import annotations

from typing import Any

import pytest

from quota.decision import Cause, Decision
from quota.policy import invalid_message, validate_policy
from webhook.admission.policies import validate
from webhook.admission.review import AdmissionRequest, GroupVersionKind

BROKEN_LIMITS = {"limits": [{"type": "alauda.io/ImageStream", "max": {"alauda.io/images": "-1"}}]}
BROKEN_QUOTA = {"hard": {"alauda.io/imagestreams": "lots"}}


def request(kind: str, obj: dict[str, Any] | None, name: str = "") -> AdmissionRequest:
    return AdmissionRequest(
        uid="u",
        kind=GroupVersionKind("", "v1", kind),
        resource=kind.lower() + "s",
        sub_resource="",
        operation="CREATE",
        namespace="team-a",
        name=name,
        object=obj,
        old_object=None,
        dry_run=False,
        username="alice",
    )


def policy(kind: str, spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize(
    ("kind", "spec"), [("LimitRange", BROKEN_LIMITS), ("ResourceQuota", BROKEN_QUOTA)]
)
def test_a_broken_policy_is_invalid_with_the_message_naming_its_fields(
    kind: str, spec: dict[str, Any]
) -> None:
    obj = policy(kind, spec)
    decision = validate(request(kind, obj, name="from-request"))
    expected = invalid_message(kind, "from-request", validate_policy(obj, kind))
    assert decision == Decision.deny(expected, Cause.INVALID_POLICY)
    assert (decision.code, decision.reason) == (422, "Invalid")
    assert "spec." in decision.message


def test_the_name_comes_from_the_object_when_the_request_has_none() -> None:
    decision = validate(request("LimitRange", policy("LimitRange", BROKEN_LIMITS, name="lr")))
    assert decision.message.startswith('LimitRange "lr" is invalid')


@pytest.mark.parametrize(
    "req",
    [
        request("LimitRange", None),
        request("Pod", policy("Pod", BROKEN_LIMITS)),
        request("LimitRange", policy("LimitRange", {"limits": [{"type": "Container"}]})),
        request("ResourceQuota", policy("ResourceQuota", {"hard": {"pods": "-1"}})),
        request(
            "LimitRange",
            policy(
                "LimitRange", {"limits": [{"type": "alauda.io/Image", "max": {"storage": "1Gi"}}]}
            ),
        ),
    ],
    ids=["no object", "another kind", "native limits", "native quota", "valid alauda limits"],
)
def test_everything_else_is_allowed(req: AdmissionRequest) -> None:
    assert validate(req) == Decision.allow()


def test_the_kind_comes_from_the_request_not_the_object() -> None:
    obj = {"metadata": {"name": "p"}, "spec": BROKEN_LIMITS}  # no "kind" in the object
    decision = validate(request("LimitRange", obj))
    assert (decision.allowed, decision.code) == (False, 422)
