"""Our server's own port, reached directly: TLS versions and malformed requests.

Local stack only (marker ``local_only``): in an existing cluster the port is not reachable
from the test process; the kind script deselects these with ``-m "not local_only"``.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
import requests

from serving.config import DEFAULT_THREADS
from tests.integration.support.cluster import ClusterEnv
from webhook.admission.endpoints import VALIDATE_IMAGESTREAMS
from webhook.registration import TIMEOUT_SECONDS

pytestmark = pytest.mark.local_only

VALID_REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "0f6b3c2e-1",
        "kind": {"group": "image.alauda.io", "version": "v1", "kind": "ImageStream"},
        "resource": {"group": "image.alauda.io", "version": "v1", "resource": "imagestreams"},
        "operation": "CREATE",
        "namespace": "team-a",
        "name": "app",
        "object": {"metadata": {"name": "app"}},
    },
}


def _review(**request_changes: object) -> bytes:
    review = json.loads(json.dumps(VALID_REVIEW))
    for key, value in request_changes.items():
        if value is _DROP:
            review["request"].pop(key)
        else:
            review["request"][key] = value
    return json.dumps(review).encode()


_DROP = object()
JSON = {"Content-Type": "application/json"}

# (case id, body, headers, words the error must contain)
MALFORMED = [
    ("not-json", b"{not json", JSON, "not valid JSON"),
    ("invalid-utf8", b"\xff\xfe{}", JSON, "not valid JSON"),
    ("empty-body", b"", JSON, "empty"),
    ("json-array", b"[]", JSON, "JSON object"),
    ("wrong-kind", json.dumps({**VALID_REVIEW, "kind": "Pod"}).encode(), JSON, "kind"),
    (
        "wrong-version",
        json.dumps({**VALID_REVIEW, "apiVersion": "admission.k8s.io/v1beta1"}).encode(),
        JSON,
        "apiVersion",
    ),
    (
        "missing-request",
        json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
        JSON,
        "request",
    ),
    ("missing-uid", _review(uid=_DROP), JSON, "request.uid"),
    ("uid-not-string", _review(uid=42), JSON, "request.uid"),
    ("bad-operation", _review(operation="PATCH"), JSON, "request.operation"),
    ("object-not-object", _review(object="app"), JSON, "request.object"),
    ("dryrun-not-bool", _review(dryRun="yes"), JSON, "request.dryRun"),
    ("wrong-content-type", _review(), {"Content-Type": "text/plain"}, "content type"),
    ("no-content-type", _review(), {}, "content type"),
    ("deeply-nested", b"[" * 200_000 + b"]" * 200_000, JSON, "JSON"),
    ("over-size-cap", b'{"pad": "' + b"x" * (9 * 1024 * 1024) + b'"}', JSON, "exceeds"),
]


@pytest.mark.parametrize(
    ("body", "headers", "words"),
    [pytest.param(b, h, w, id=i) for i, b, h, w in MALFORMED],
)
@pytest.mark.parametrize("path", ["/validate/imagestreams", "/mutate/serviceaccounts"])
def test_malformed_requests_get_400_with_a_json_error(
    cluster: ClusterEnv, path: str, body: bytes, headers: dict[str, str], words: str
) -> None:
    result = cluster.server_request("POST", path, body, headers)
    assert result.status == 400, result.body[:300]
    assert result.headers["Content-Type"].startswith("application/json")
    error = result.json()["error"]
    assert words in error
    assert "Traceback" not in error
    assert cluster.server_request("GET", "/healthz").status == 200


def test_a_valid_review_still_works_after_malformed_ones(cluster: ClusterEnv) -> None:
    result = cluster.server_request("POST", "/validate/imagestreams", _review(), JSON)
    assert result.status == 200
    body = result.json()
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == "0f6b3c2e-1"
    assert "patch" not in body["response"]


def test_unknown_paths_and_methods_get_json_errors(cluster: ClusterEnv) -> None:
    missing = cluster.server_request("GET", "/nope")
    assert missing.status == 404 and "error" in missing.json()
    wrong_method = cluster.server_request("GET", "/validate/imagestreams")
    assert wrong_method.status == 405 and "error" in wrong_method.json()


def _tls_version(cluster: ClusterEnv, maximum: ssl.TLSVersion) -> str:
    assert cluster.stack is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(cluster.stack.certs_dir / "ca.crt"))
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = maximum
    context.set_ciphers("ALL:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", cluster.stack.webhook_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version() or ""


def test_server_speaks_tls_1_2_and_up_only(cluster: ClusterEnv) -> None:
    assert _tls_version(cluster, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _tls_version(cluster, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        _tls_version(cluster, ssl.TLSVersion.TLSv1_1)


def test_more_idle_connections_than_threads_do_not_starve_a_review(
    cluster: ClusterEnv,
) -> None:
    """The API server keeps spare connections open (up to 25 idle per host); each one that
    says nothing after its handshake holds a gthread thread until gunicorn hands it back
    to its poller. Even with more of them than the server has threads, a review must be
    answered within the webhook's timeout, or the API server applies the failure policy."""
    assert cluster.stack is not None
    threads = DEFAULT_THREADS  # the stack runs serve with the default
    context = ssl.create_default_context(cafile=str(cluster.stack.certs_dir / "ca.crt"))
    address = ("127.0.0.1", cluster.stack.webhook_port)
    opened: list[ssl.SSLSocket] = []

    def open_idle() -> None:
        raw = socket.create_connection(address, timeout=60)
        opened.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))

    with ThreadPoolExecutor(max_workers=threads + 10) as pool:
        handshakes = [pool.submit(open_idle) for _ in range(threads + 10)]
        try:
            # Every thread holds an idle connection now; the other ten wait for one.
            cluster.wait(lambda: len(opened) >= threads, timeout=60, what="idle handshakes")
            started = time.monotonic()
            result = cluster.server_request("POST", VALIDATE_IMAGESTREAMS, _review(), JSON)
            elapsed = time.monotonic() - started
            assert result.status == 200
            assert result.json()["response"]["allowed"] is True
            assert elapsed < TIMEOUT_SECONDS[VALIDATE_IMAGESTREAMS], elapsed
        finally:
            wait(handshakes, timeout=60)
            for conn in opened:
                conn.close()


def test_reviews_need_the_api_servers_client_certificate(cluster: ClusterEnv) -> None:
    """No certificate: 401 before the body is read. A certificate of another CA (the
    cluster's own admin certificate): the TLS handshake fails. Probes need none."""
    assert cluster.stack is not None
    anonymous = cluster.server_request(
        "POST", VALIDATE_IMAGESTREAMS, _review(), JSON, as_api_server=False
    )
    assert anonymous.status == 401
    assert "client certificate" in anonymous.json()["error"]
    assert cluster.server_request("GET", "/healthz", as_api_server=False).status == 200

    assert cluster.stack.cp.pki is not None
    admin_cert, admin_key = cluster.stack.cp.pki.client("admin")
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(
            cluster.stack.webhook_url + VALIDATE_IMAGESTREAMS,
            data=_review(),
            headers=JSON,
            cert=(str(admin_cert), str(admin_key)),
            verify=str(cluster.stack.certs_dir / "ca.crt"),
            timeout=30,
        )
