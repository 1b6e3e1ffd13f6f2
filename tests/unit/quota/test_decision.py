"""The one allow/deny result: constructors and the label logs and metrics use."""

from __future__ import annotations

from quota.decision import Decision


def test_decision_labels() -> None:
    assert Decision.allow().label == "allowed"
    assert Decision.allow(patch=[{"op": "remove", "path": "/a"}]).label == "patched"


def test_a_denial_is_forbidden_unless_told_otherwise() -> None:
    assert Decision.deny("no") == Decision(False, code=403, reason="Forbidden", message="no")
    invalid = Decision.deny("bad", code=422, reason="Invalid")
    assert (invalid.allowed, invalid.code, invalid.reason) == (False, 422, "Invalid")


def test_an_allow_keeps_its_patch_and_warnings_as_tuples() -> None:
    decision = Decision.allow(patch=[{"op": "add", "path": "/a", "value": 1}], warnings=["w"])
    assert decision.patch == ({"op": "add", "path": "/a", "value": 1},)
    assert decision.warnings == ("w",)
    assert decision.code == 200 and decision.message == ""
