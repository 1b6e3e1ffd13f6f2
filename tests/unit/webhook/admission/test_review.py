from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from quota.decision import Cause, Decision
from quota.objects import Obj
from serving.httpjson import JsonLimits, check_cost
from webhook.admission.review import (
    DENSEST_OBJECT_BYTES_PER_VALUE,
    ETCD_MAX_OBJECT_BYTES,
    REVIEW_LIMITS,
    BadReview,
    parse_review,
    render_response,
)

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


WRONG_KIND = {**review(), "kind": "AdmissionResponse"}
OLD_VERSION = {**review(), "apiVersion": "admission.k8s.io/v1beta1"}
NO_REQUEST = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
MALFORMED: list[tuple[bytes, str | None, str]] = [
    (b"{", JSON, "request body is not valid JSON: "),
    (b"", JSON, "request body is empty: expected a AdmissionReview in JSON"),
    (b"null", JSON, "request body must be a JSON object: a AdmissionReview"),
    (b'"x"', JSON, "request body must be a JSON object: a AdmissionReview"),
    (
        body(review()),
        "text/plain",
        "unsupported content type 'text/plain': expected application/json",
    ),
    (body(review()), None, "unsupported content type '(none)': expected application/json"),
    (body(WRONG_KIND), JSON, "kind must be 'AdmissionReview', got 'AdmissionResponse'"),
    (
        body(OLD_VERSION),
        JSON,
        "apiVersion must be 'admission.k8s.io/v1', got 'admission.k8s.io/v1beta1'",
    ),
    (body(NO_REQUEST), JSON, "request is required and must be an object"),
    (body({**NO_REQUEST, "request": []}), JSON, "request is required and must be an object"),
    (body(review(uid="")), JSON, "request.uid must not be empty"),
    (body(review(uid=None)), JSON, "request.uid is required"),
    (body(review(uid=7)), JSON, "request.uid must be a string"),
    (body(review(operation=None)), JSON, "request.operation is required"),
    (body(review(operation=3)), JSON, "request.operation must be a string"),
    (
        body(review(operation="PATCH")),
        JSON,
        "request.operation 'PATCH' is not one of ['CONNECT', 'CREATE', 'DELETE', 'UPDATE']",
    ),
    (
        body(review(kind="ServiceAccount")),
        JSON,
        "request.kind must be an object with group, version and kind",
    ),
    (body(review(kind={"group": "", "version": "v1"})), JSON, "request.kind.kind is required"),
    (body(review(kind={"group": "", "kind": "X"})), JSON, "request.kind.version is required"),
    (
        body(review(kind={"group": 1, "version": "v1", "kind": "X"})),
        JSON,
        "request.kind.group must be a string",
    ),
    (
        body(review(resource=None)),
        JSON,
        "request.resource must be an object with group, version and resource",
    ),
    (body(review(resource={"group": ""})), JSON, "request.resource.resource is required"),
    (body(review(resource={"resource": ""})), JSON, "request.resource.resource must not be empty"),
    (body(review(subResource=1)), JSON, "request.subResource must be a string"),
    (body(review(namespace=1)), JSON, "request.namespace must be a string"),
    (body(review(name=1)), JSON, "request.name must be a string"),
    (body(review(object=[1])), JSON, "request.object must be an object or null"),
    (body(review(oldObject="x")), JSON, "request.oldObject must be an object or null"),
    (body(review(dryRun="true")), JSON, "request.dryRun must be a boolean"),
    (body(review(userInfo="alice")), JSON, "request.userInfo must be an object"),
    (body(review(userInfo={"username": 1})), JSON, "request.userInfo.username must be a string"),
    (b"[" * 100_000, JSON, "request body JSON is nested more than 64 levels deep"),
]


@pytest.mark.parametrize(("raw", "content_type", "message"), MALFORMED)
def test_malformed_reviews_name_the_problem(
    raw: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(BadReview) as err:
        parse_review(raw, content_type)
    if message.endswith(": "):
        assert str(err.value).startswith(message)
    else:
        assert str(err.value) == message


def test_optional_fields_may_be_absent_or_null() -> None:
    req = parse_review(
        body(review(namespace=None, name=None, subResource=None, userInfo=None, dryRun=None)),
        JSON,
    )
    assert (req.namespace, req.name, req.sub_resource, req.username) == ("", "", "", "")
    assert req.dry_run is False
    assert parse_review(body(review(kind={"version": "v1", "kind": "X"})), JSON).kind.group == ""
    assert parse_review(body(review(userInfo={})), JSON).username == ""


def test_a_review_without_dry_run_is_not_a_dry_run() -> None:
    raw = review()
    raw["request"].pop("dryRun", None)
    assert parse_review(body(raw), JSON).dry_run is False


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
    with pytest.raises(ValueError, match=r"^a validating webhook must not return a patch$"):
        render_response(req, Decision.allow(patch=[{"op": "remove", "path": "/x"}]), mutating=False)


def test_denial_carries_status_code_reason_message_and_its_cause() -> None:
    """The cause rides in ``details.causes``, which the API server passes on to the writer
    (the front door's records read the rule and the contract's message there)."""
    req = parse_review(body(review()), JSON)
    decision = Decision.deny("nope", Cause.QUOTA_EXCEEDED)
    out = render_response(req, decision, mutating=False)
    assert out["response"] == {
        "uid": "u-1",
        "allowed": False,
        "status": {
            "code": 403,
            "reason": "Forbidden",
            "message": "nope",
            "details": {"causes": [{"reason": "QuotaExceeded", "message": "nope"}]},
        },
    }
    assert decision.label == "denied"


def test_an_invalid_policy_is_answered_without_causes() -> None:
    """kubectl prints an Invalid Status from its ``details.causes`` in place of the message
    (``The request is invalid: ...``): the message naming the object stays what it prints."""
    req = parse_review(body(review()), JSON)
    out = render_response(req, Decision.deny("nope", Cause.INVALID_POLICY), mutating=False)
    assert out["response"]["status"] == {"code": 422, "reason": "Invalid", "message": "nope"}


# --- the cost limits, from real objects -------------------------------------------------------

REGISTRY = "image-registry.image-registry-system.svc:5000"


def digest(index: int) -> str:
    return "sha256:" + hashlib.sha256(str(index).encode()).hexdigest()


def imagestream(tags: int, images_per_tag: int) -> dict[str, Any]:
    """An ImageStream as the API server stores it: whole tag history, and managedFields
    naming every field of every spec tag (server-side apply keys them by name)."""
    spec_tags: list[Obj] = []
    status_tags: list[Obj] = []
    fields: Obj = {}
    for t in range(tags):
        name = f"v{t}.0.{t % 7}"
        source = f"quay.io/org/app:{name}"
        spec_tags.append(
            {
                "name": name,
                "annotations": {"openshift.io/imported-from": source},
                "from": {"kind": "DockerImage", "name": source},
                "generation": 3,
                "importPolicy": {"importMode": "Legacy"},
                "referencePolicy": {"type": "Source"},
            }
        )
        items = [
            {
                "created": "2024-05-01T10:11:12Z",
                "dockerImageReference": f"{REGISTRY}/team-a/app@{digest(t * 1000 + i)}",
                "image": digest(t * 1000 + i),
                "generation": 3,
            }
            for i in range(images_per_tag)
        ]
        status_tags.append({"tag": name, "items": items})
        fields[f'k:{{"name":"{name}"}}'] = {
            ".": {},
            "f:annotations": {".": {}, "f:openshift.io/imported-from": {}},
            "f:from": {".": {}, "f:kind": {}, "f:name": {}},
            "f:generation": {},
            "f:importPolicy": {".": {}, "f:importMode": {}},
            "f:name": {},
            "f:referencePolicy": {".": {}, "f:type": {}},
        }
    return {
        "apiVersion": "image.alauda.io/v1",
        "kind": "ImageStream",
        "metadata": {
            "name": "app",
            "namespace": "team-a",
            "uid": "6f1c3c2e-4b7a-4bb8-9a43-2b1f0c9d7e11",
            "resourceVersion": "123456",
            "generation": 3,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Apply",
                    "apiVersion": "image.alauda.io/v1",
                    "time": "2024-05-01T10:11:12Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:tags": fields}},
                }
            ],
        },
        "spec": {"lookupPolicy": {"local": False}, "tags": spec_tags},
        "status": {"dockerImageRepository": f"{REGISTRY}/team-a/app", "tags": status_tags},
    }


def values_in(text: str) -> int:
    return check_cost(text, JsonLimits(max_depth=1000, max_values=10**9)).values


@pytest.mark.parametrize(("tags", "images_per_tag"), [(300, 1), (100, 10), (20, 100)])
def test_real_imagestreams_are_no_denser_than_the_limits_assume(
    tags: int, images_per_tag: int
) -> None:
    text = json.dumps(imagestream(tags, images_per_tag), separators=(",", ":"))
    assert len(text) / values_in(text) >= DENSEST_OBJECT_BYTES_PER_VALUE


def test_a_review_of_the_biggest_imagestream_etcd_can_store_passes() -> None:
    """object and oldObject both at etcd's limit, at the densest real content."""
    tags = 1
    while len(json.dumps(imagestream(tags * 2, 1), separators=(",", ":"))) < ETCD_MAX_OBJECT_BYTES:
        tags *= 2
    while len(json.dumps(imagestream(tags + 1, 1), separators=(",", ":"))) < ETCD_MAX_OBJECT_BYTES:
        tags += max(1, tags // 100)
    stream = imagestream(tags, 1)
    raw = body(review(object=stream, oldObject=stream, operation="UPDATE"))
    assert len(raw) > 2 * ETCD_MAX_OBJECT_BYTES * 0.99
    assert parse_review(raw, JSON).object == stream
    # ... with margin: a third as many values again would pass too.
    assert values_in(raw.decode()) * 4 // 3 < REVIEW_LIMITS.max_values
