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

REVIEW = {
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
