"""The admission Blueprint, through Flask's test client (no TLS, no cluster)."""

from __future__ import annotations

import base64
import io
import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from quota.decision import Cause, Decision
from serving.app import create_app
from serving.httpjson import RETRY_AFTER_SECONDS, BodyGate
from webhook.admission.endpoints import AdmissionEndpoint
from webhook.admission.review import AdmissionRequest
from webhook.admission.routes import admission_blueprint

REVIEW: dict[str, Any] = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "u-9",
        "kind": {"group": "", "version": "v1", "kind": "ServiceAccount"},
        "resource": {"group": "", "version": "v1", "resource": "serviceaccounts"},
        "operation": "CREATE",
        "object": {"metadata": {"name": "x"}},
    },
}


def boom(request: AdmissionRequest) -> Decision:
    raise RuntimeError("secret-token-abc must never reach the client")


def deny(request: AdmissionRequest) -> Decision:
    return Decision.deny(f"{request.name or 'x'} is forbidden", Cause.QUOTA_EXCEEDED)


@pytest.fixture
def client() -> FlaskClient:
    admission = admission_blueprint(
        [
            AdmissionEndpoint("/crash/validate", boom, mutating=False),
            AdmissionEndpoint("/crash/mutate", boom, mutating=True, fail_open=True),
            AdmissionEndpoint("/deny", deny, mutating=False),
        ],
        max_body_bytes=1024,
    )
    app = create_app([admission], readiness=[lambda: None])
    return app.test_client()


def post(client: FlaskClient, path: str, payload: Any = REVIEW) -> Any:
    return client.post(path, data=json.dumps(payload), content_type="application/json")


def test_a_crashing_validating_handler_denies_retryably_without_details(
    client: FlaskClient,
) -> None:
    response = post(client, "/crash/validate")
    assert response.status_code == 200
    review = response.get_json()["response"]
    assert review["allowed"] is False
    message = "internal error in the registry policy webhook; retry the request"
    assert review["status"] == {
        "code": 500,
        "reason": "InternalError",
        "message": message,
        "details": {"causes": [{"reason": "InternalError", "message": message}]},
    }
    assert "secret-token" not in response.get_data(as_text=True)


def test_a_crashing_mutating_handler_fails_open_with_a_warning(client: FlaskClient) -> None:
    review = post(client, "/crash/mutate").get_json()["response"]
    assert review["allowed"] is True
    assert "patch" not in review
    assert review["warnings"] == ["registry webhook error; change not applied"]


def test_denials_pass_through(client: FlaskClient) -> None:
    review = post(client, "/deny").get_json()["response"]
    assert review == {
        "uid": "u-9",
        "allowed": False,
        "status": {
            "code": 403,
            "reason": "Forbidden",
            "message": "x is forbidden",
            "details": {"causes": [{"reason": "QuotaExceeded", "message": "x is forbidden"}]},
        },
    }


def test_body_over_the_cap_is_a_400_naming_the_cap(client: FlaskClient) -> None:
    response = post(client, "/deny", {"pad": "x" * 2000})
    assert response.status_code == 400
    assert response.get_json() == {"error": "request body exceeds 1024 bytes", "code": 400}
    assert response.headers["Connection"] == "close"


def test_decisions_are_counted_by_endpoint_in_metrics(client: FlaskClient) -> None:
    labels = {"endpoint": "deny", "decision": "denied"}
    before = REGISTRY.get_sample_value("registry_v2_policy_admission_requests_total", labels)
    post(client, "/deny")
    after = REGISTRY.get_sample_value("registry_v2_policy_admission_requests_total", labels)
    assert after == (before or 0) + 1


MALFORMED: dict[str, tuple[bytes, str]] = {
    "not JSON": (b"{nope", "application/json"),
    "not UTF-8": (b'{"kind": "\xff"}', "application/json"),
    "empty": (b"", "application/json"),
    "wrong content type": (json.dumps(REVIEW).encode(), "text/plain"),
    "an array": (b"[]", "application/json"),
    "wrong kind": (json.dumps({**REVIEW, "kind": "Pod"}).encode(), "application/json"),
    "wrong apiVersion": (
        json.dumps({**REVIEW, "apiVersion": "admission.k8s.io/v1beta1"}).encode(),
        "application/json",
    ),
    "no request": (
        json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
        "application/json",
    ),
    "no uid": (
        json.dumps({**REVIEW, "request": {**REVIEW["request"], "uid": None}}).encode(),
        "application/json",
    ),
    "nested too deeply": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "an integer of 5,000 digits": (
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "n": '
        + b"9" * 5000
        + b"}",
        "application/json",
    ),
}


@pytest.fixture
def default_client() -> FlaskClient:
    """The default body cap, so that big malformed bodies reach the parser."""
    endpoints = [
        AdmissionEndpoint("/deny", deny, mutating=False),
        AdmissionEndpoint("/crash/mutate", boom, mutating=True, fail_open=True),
    ]
    return create_app([admission_blueprint(endpoints)]).test_client()


@pytest.mark.parametrize("path", ["/deny", "/crash/mutate"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_review_is_a_json_400_naming_the_problem(
    default_client: FlaskClient, path: str, case: str
) -> None:
    body, content_type = MALFORMED[case]
    response = default_client.post(path, data=body, content_type=content_type)
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    error = response.get_json()
    assert error["code"] == 400
    assert error["error"]
    assert "Traceback" not in error["error"]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("path", "endpoint", "decision"),
    [
        ("/deny", "deny", "denied"),
        ("/crash/validate", "crash_validate", "error"),
        ("/crash/mutate", "crash_mutate", "error"),
    ],
)
def test_each_answer_is_counted_and_timed_by_endpoint_and_decision(
    client: FlaskClient, path: str, endpoint: str, decision: str
) -> None:
    requests = (
        "registry_v2_policy_admission_requests_total",
        {"endpoint": endpoint, "decision": decision},
    )
    timed = ("registry_v2_policy_admission_duration_seconds_count", {"endpoint": endpoint})
    before = sample(requests[0], **requests[1]), sample(timed[0], **timed[1])
    post(client, path)
    after = sample(requests[0], **requests[1]), sample(timed[0], **timed[1])
    assert after == (before[0] + 1, before[1] + 1)


def test_a_refused_body_is_counted_by_endpoint(client: FlaskClient) -> None:
    for body in (b"{", b"x" * 2000):
        before = sample("registry_v2_policy_bad_requests_total", endpoint="deny")
        client.post("/deny", data=body, content_type="application/json")
        assert sample("registry_v2_policy_bad_requests_total", endpoint="deny") == before + 1


def admission_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The structured fields (``kube.logfields``) of every "admission" line."""
    return [r.fields for r in caplog.records if r.getMessage() == "admission"]  # type: ignore[attr-defined]


def test_every_answer_is_logged_with_the_request_identity(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webhook.admission.routes")
    request = {**REVIEW["request"], "namespace": "team-a", "name": "x", "dryRun": True}
    post(client, "/deny", {**REVIEW, "request": request})
    [line] = admission_lines(caplog)
    assert 0 <= line.pop("ms") < 10_000
    assert line == {
        "endpoint": "/deny",
        "uid": "u-9",
        "operation": "CREATE",
        "resource": "serviceaccounts",
        "namespace": "team-a",
        "name": "x",
        "dry_run": True,
        "decision": "denied",
    }


def test_a_subresource_is_logged_with_its_resource(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webhook.admission.routes")
    post(client, "/deny", {**REVIEW, "request": {**REVIEW["request"], "subResource": "status"}})
    [line] = admission_lines(caplog)
    assert line["resource"] == "serviceaccounts/status"


def test_a_mutating_endpoint_answers_with_its_patch() -> None:
    ops = [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]
    endpoint = AdmissionEndpoint("/patch", lambda r: Decision.allow(patch=ops), mutating=True)
    client = create_app([admission_blueprint([endpoint])]).test_client()
    review = post(client, "/patch").get_json()["response"]
    assert review["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(review["patch"])) == ops


def test_a_handler_crash_is_logged_with_the_request_identity(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webhook.admission.routes")
    review = {**REVIEW, "request": {**REVIEW["request"], "namespace": "team-a", "name": "x"}}
    post(client, "/crash/validate", review)
    [record] = [r for r in caplog.records if r.getMessage() == "admission handler failed"]
    assert record.fields == {  # type: ignore[attr-defined]
        "endpoint": "/crash/validate",
        "uid": "u-9",
        "operation": "CREATE",
        "namespace": "team-a",
        "name": "x",
    }
    assert record.exc_info is not None
    assert admission_lines(caplog)[0]["decision"] == "error"


def test_a_malformed_review_is_answered_and_logged_with_the_reason(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.post("/deny", data=b"[]", content_type="application/json")
    reason = "request body must be a JSON object: a AdmissionReview"
    assert response.get_json() == {"error": reason, "code": 400}
    assert f"rejected malformed review on /deny: {reason}" in caplog.messages


def test_a_large_body_that_finds_no_slot_is_a_retryable_503() -> None:
    answered: list[AdmissionRequest] = []

    def allow(request: AdmissionRequest) -> Decision:
        answered.append(request)
        return Decision.allow()

    endpoint = AdmissionEndpoint("/allow", allow, mutating=False)
    full = BodyGate(slots=0, wait_seconds=0, small_bytes=10)
    client = create_app([admission_blueprint([endpoint], gate=full)]).test_client()
    busy = (
        "registry_v2_policy_admission_requests_total",
        {"endpoint": "allow", "decision": "busy"},
    )
    before = sample(busy[0], **busy[1])
    response = post(client, "/allow")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.get_json() == {"code": 503, "error": "too many large requests at once; retry"}
    assert answered == []
    assert sample(busy[0], **busy[1]) == before + 1
    small = client.post("/allow", data=b"{}", content_type="application/json")
    assert small.status_code == 400  # read and judged: no slot needed


class Silent(io.BytesIO):
    """The body of a client that sends nothing in time: the server's socket times out."""

    def read(self, size: int | None = -1) -> bytes:
        raise TimeoutError("the read limit is spent")

    def readinto(self, buffer: Any) -> int:
        raise TimeoutError("the read limit is spent")


def test_a_body_not_sent_in_time_is_a_408_that_closes_the_connection(
    client: FlaskClient,
) -> None:
    before = sample("registry_v2_policy_bad_requests_total", endpoint="deny")
    response = client.post(
        "/deny",
        input_stream=Silent(),
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": "100"},
    )
    assert response.status_code == 408
    assert response.get_json() == {"code": 408, "error": "request body not received in time"}
    assert response.headers["Connection"] == "close"
    assert sample("registry_v2_policy_bad_requests_total", endpoint="deny") == before + 1
