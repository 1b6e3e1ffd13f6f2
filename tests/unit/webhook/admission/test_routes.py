"""The admission Blueprint, through Flask's test client (no TLS, no cluster)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from quota.decision import Decision
from webhook.admission.endpoints import AdmissionEndpoint
from webhook.admission.review import AdmissionRequest
from webhook.admission.routes import admission_blueprint
from webhook.app import create_app

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
    return Decision.deny(f"{request.name or 'x'} is forbidden")


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
    assert review["status"]["code"] == 500
    assert "secret-token" not in response.get_data(as_text=True)


def test_a_crashing_mutating_handler_fails_open_with_a_warning(client: FlaskClient) -> None:
    review = post(client, "/crash/mutate").get_json()["response"]
    assert review["allowed"] is True
    assert "patch" not in review
    assert review["warnings"]


def test_denials_pass_through(client: FlaskClient) -> None:
    review = post(client, "/deny").get_json()["response"]
    assert review == {
        "uid": "u-9",
        "allowed": False,
        "status": {"code": 403, "reason": "Forbidden", "message": "x is forbidden"},
    }


def test_body_over_the_cap_is_a_400_naming_the_cap(client: FlaskClient) -> None:
    response = post(client, "/deny", {"pad": "x" * 2000})
    assert response.status_code == 400
    assert "exceeds 1024 bytes" in response.get_json()["error"]


def test_decisions_are_counted_by_endpoint_in_metrics(client: FlaskClient) -> None:
    post(client, "/deny")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'registry_admission_requests_total{decision="denied",endpoint="deny"}' in metrics


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
