"""Only the API server may send admission reviews once a client CA is configured."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from quota.decision import Decision
from serving.app import create_app
from webhook.admission.callers import REFUSAL, SOCKET_KEY, has_verified_client_certificate
from webhook.admission.endpoints import AdmissionEndpoint
from webhook.admission.review import AdmissionRequest
from webhook.admission.routes import admission_blueprint

REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "u-1",
        "kind": {"group": "", "version": "v1", "kind": "ServiceAccount"},
        "resource": {"group": "", "version": "v1", "resource": "serviceaccounts"},
        "operation": "CREATE",
        "object": {"metadata": {"name": "x"}},
    },
}
VERIFIED_PEER = {"subject": ((("commonName", "kube-apiserver-webhook-client"),),)}


class PeerSocket:
    """What ``getpeercert()`` of an ``ssl.SSLSocket`` answers after the handshake."""

    def __init__(self, peer: Any = None, error: Exception | None = None) -> None:
        self._peer = peer
        self._error = error

    def getpeercert(self) -> Any:
        self.asked = getattr(self, "asked", 0) + 1
        if self._error is not None:
            raise self._error
        return self._peer


@pytest.mark.parametrize(
    ("environ", "verified"),
    [
        ({}, False),  # not gunicorn (no socket at all)
        ({SOCKET_KEY: object()}, False),  # a plain socket: no TLS
        ({SOCKET_KEY: PeerSocket(None)}, False),  # TLS, no certificate presented
        ({SOCKET_KEY: PeerSocket({})}, False),  # presented, not verified
        ({SOCKET_KEY: PeerSocket(error=ValueError("closed"))}, False),
        ({SOCKET_KEY: PeerSocket(error=OSError("reset"))}, False),
        ({SOCKET_KEY: PeerSocket(VERIFIED_PEER)}, True),
    ],
)
def test_only_a_verified_peer_certificate_counts(environ: dict[str, Any], verified: bool) -> None:
    assert has_verified_client_certificate(environ) is verified


@pytest.mark.parametrize("peer", [VERIFIED_PEER, None])
def test_a_connections_certificate_is_asked_of_its_socket_once(peer: Any) -> None:
    """Its handshake settles it; ``getpeercert()`` decodes the certificate on each call."""
    sock = PeerSocket(peer)
    answers = {has_verified_client_certificate({SOCKET_KEY: sock}) for _ in range(3)}
    assert answers == {peer is not None}
    assert sock.asked == 1


def test_a_socket_that_failed_to_answer_is_asked_again() -> None:
    sock = PeerSocket(error=OSError("reset"))
    assert not has_verified_client_certificate({SOCKET_KEY: sock})
    sock._error = None
    sock._peer = VERIFIED_PEER
    assert has_verified_client_certificate({SOCKET_KEY: sock})


class Recording:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: AdmissionRequest) -> Decision:
        self.calls += 1
        return Decision.allow()


def client_for(handler: Recording, *, require: bool) -> FlaskClient:
    blueprint = admission_blueprint(
        [AdmissionEndpoint("/mutate/x", handler, mutating=True)],
        require_client_certificate=require,
    )
    return create_app([blueprint], readiness=[lambda: None]).test_client()


def post(client: FlaskClient, peer: PeerSocket | None) -> Any:
    environ = {} if peer is None else {SOCKET_KEY: peer}
    return client.post(
        "/mutate/x",
        data=json.dumps(REVIEW),
        content_type="application/json",
        environ_base=environ,
    )


def refused_count() -> float:
    value = REGISTRY.get_sample_value(
        "registry_v2_policy_admission_requests_total",
        {"endpoint": "mutate_x", "decision": "unauthenticated"},
    )
    return value or 0.0


def test_a_review_without_the_api_servers_certificate_never_reaches_the_handler() -> None:
    handler = Recording()
    client = client_for(handler, require=True)
    before = refused_count()

    response = post(client, PeerSocket(None))

    assert response.status_code == 401
    assert response.get_json() == {"error": REFUSAL, "code": 401}
    assert response.headers["Connection"] == "close"
    assert handler.calls == 0
    assert refused_count() == before + 1


def test_a_review_with_a_verified_certificate_is_judged() -> None:
    handler = Recording()
    response = post(client_for(handler, require=True), PeerSocket(VERIFIED_PEER))

    assert response.status_code == 200
    assert response.get_json()["response"]["uid"] == "u-1"
    assert handler.calls == 1


def test_without_a_client_ca_any_caller_is_judged() -> None:
    handler = Recording()
    response = post(client_for(handler, require=False), None)

    assert response.status_code == 200
    assert handler.calls == 1
