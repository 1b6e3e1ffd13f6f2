from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from quota.decision import Decision
from webhook.admission.review import BadReview, parse_review, render_response

JSON = "application/json"


def review(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "u-1",
        "kind": {"group": "", "version": "v1", "kind": "ServiceAccount"},
        "resource": {"group": "", "version": "v1", "resource": "serviceaccounts"},
        "operation": "CREATE",
        "namespace": "team-a",
        "name": "builder",
        "object": {"metadata": {"name": "builder"}},
        "userInfo": {"username": "alice"},
    }
    request.update(changes)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_parses_the_fields_handlers_use() -> None:
    req = parse_review(body(review(dryRun=True, subResource="status")), JSON)
    assert req.uid == "u-1"
    assert req.kind.kind == "ServiceAccount" and req.kind.group == ""
    assert req.resource == "serviceaccounts"
    assert req.sub_resource == "status"
    assert req.operation == "CREATE"
    assert (req.namespace, req.name) == ("team-a", "builder")
    assert req.object == {"metadata": {"name": "builder"}}
    assert req.old_object is None
    assert req.dry_run is True
    assert req.username == "alice"


def test_content_type_parameters_are_accepted() -> None:
    assert parse_review(body(review()), "application/json; charset=utf-8").uid == "u-1"


@pytest.mark.parametrize(
    ("raw", "content_type", "words"),
    [
        (b"{", JSON, "not valid JSON"),
        (b"", JSON, "empty"),
        (b"null", JSON, "JSON object"),
        (b'"x"', JSON, "JSON object"),
        (body(review()), "text/plain", "content type"),
        (body(review()), None, "content type"),
        (body({**review(), "kind": "AdmissionResponse"}), JSON, "kind must be"),
        (body({**review(), "apiVersion": "admission.k8s.io/v1beta1"}), JSON, "apiVersion"),
        (body({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}), JSON, "request"),
        (body(review(uid="")), JSON, "request.uid must not be empty"),
        (body(review(uid=None)), JSON, "request.uid is required"),
        (body(review(uid=7)), JSON, "request.uid must be a string"),
        (body(review(operation="PATCH")), JSON, "request.operation"),
        (body(review(kind="ServiceAccount")), JSON, "request.kind"),
        (body(review(kind={"group": "", "version": "v1"})), JSON, "request.kind.kind"),
        (body(review(resource=None)), JSON, "request.resource"),
        (body(review(object=[1])), JSON, "request.object"),
        (body(review(oldObject="x")), JSON, "request.oldObject"),
        (body(review(dryRun="true")), JSON, "request.dryRun"),
        (body(review(userInfo="alice")), JSON, "request.userInfo"),
        (b"[" * 100_000, JSON, "nested too deeply"),
    ],
)
def test_malformed_reviews_name_the_problem(
    raw: bytes, content_type: str | None, words: str
) -> None:
    with pytest.raises(BadReview) as err:
        parse_review(raw, content_type)
    assert words in str(err.value)


def test_allowed_response_echoes_version_kind_and_uid() -> None:
    req = parse_review(body(review()), JSON)
    out = render_response(req, Decision.allow(), mutating=False)
    assert out == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u-1", "allowed": True},
    }


def test_mutating_response_carries_a_base64_json_patch() -> None:
    req = parse_review(body(review()), JSON)
    ops = [{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}]
    out = render_response(req, Decision.allow(patch=ops, warnings=["w"]), mutating=True)
    response = out["response"]
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == ops
    assert response["warnings"] == ["w"]


def test_validating_endpoints_never_return_a_patch() -> None:
    req = parse_review(body(review()), JSON)
    with pytest.raises(ValueError):
        render_response(req, Decision.allow(patch=[{"op": "remove", "path": "/x"}]), mutating=False)


def test_denial_carries_status_code_reason_and_message() -> None:
    req = parse_review(body(review()), JSON)
    decision = Decision.deny("nope", code=422, reason="Invalid")
    out = render_response(req, decision, mutating=False)
    assert out["response"] == {
        "uid": "u-1",
        "allowed": False,
        "status": {"code": 422, "reason": "Invalid", "message": "nope"},
    }
    assert decision.label == "denied"
