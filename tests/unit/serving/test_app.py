"""The Flask app: operations endpoints and JSON errors for whatever no Blueprint handles."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Blueprint
from flask.testing import FlaskClient

from serving.app import create_app


def crashing_api() -> Blueprint:
    api = Blueprint("crashing", __name__)

    @api.get("/crash")
    def crash() -> str:
        raise RuntimeError("secret-token-abc must never reach the client")

    return api


@pytest.fixture
def client() -> FlaskClient:
    return create_app([crashing_api()], readiness=[lambda: None]).test_client()


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").get_json() == {"status": "ok"}


def test_metrics_are_not_served_on_the_admission_port(client: FlaskClient) -> None:
    """They have their own plain-HTTP port (--metrics-bind-address), which a NetworkPolicy
    can open to Prometheus alone while the TLS port stays open to the API server."""
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.is_json


def test_readiness_reports_failing_checks() -> None:
    app = create_app([], readiness=[lambda: "caches not synced"])
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reasons"] == ["caches not synced"]


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    assert client.get("/nope").get_json()["code"] == 404
    assert client.post("/crash").get_json()["code"] == 405


def test_an_unexpected_error_is_a_json_500_without_details(client: FlaskClient) -> None:
    response = client.get("/crash")
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error", "code": 500}
    assert "secret-token-abc" not in response.get_data(as_text=True)


def test_no_file_of_the_working_directory_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flask serves ``<root>/static`` by default, and an app named like ours has the
    working directory as its root: an API server has no files to serve."""
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "tls.key").write_text("private key")
    monkeypatch.chdir(tmp_path)
    app = create_app([], readiness=[])
    response = app.test_client().get("/static/tls.key")
    assert response.status_code == 404
    assert "private key" not in response.get_data(as_text=True)


def test_a_wrong_method_is_told_the_allowed_ones(client: FlaskClient) -> None:
    """RFC 9110: a 405 lists the methods the resource supports, in ``Allow``."""
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.get_json()["code"] == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
