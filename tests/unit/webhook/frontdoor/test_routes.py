"""The front door's HTTP surface with its I/O faked: who gets in, what reaches the
registry, and what clients read when something is refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from flask.testing import FlaskClient
from urllib3.exceptions import NewConnectionError

from webhook.app import create_app
from webhook.frontdoor.access import Access
from webhook.frontdoor.pushes import ManifestPut, PushDenied
from webhook.frontdoor.records import RecordFailed
from webhook.frontdoor.routes import FrontDoor, frontdoor_blueprint
from webhook.frontdoor.upstream import UpstreamResponse
from webhook.httpjson import BodyGate
from webhook.pushreview.auth import User

DIGEST = "sha256:" + "a" * 64
VIEWER, EDITOR = "viewer-token", "editor-token"


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode()}


class Tokens:
    def authenticate(self, token: str, source: str) -> User | None:
        return {VIEWER: User("viewer"), EDITOR: User("editor")}.get(token)


class Reviews:
    def may(
        self, user: User, namespace: str, verb: str, resource: str, subresource: str = ""
    ) -> bool:
        assert (resource, subresource) == ("imagestreams", "layers")
        if namespace != "team-a":
            return False
        return verb == "get" or user.name == "editor"


class Registry:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes | None]] = []
        self.fail = False

    def request(
        self,
        method: str,
        path_and_query: str,
        headers: Mapping[str, str],
        body: Iterable[bytes] | bytes | None = None,
        length: int | None = None,
    ) -> UpstreamResponse:
        if self.fail:
            raise NewConnectionError(None, "refused")  # type: ignore[arg-type]
        data = body if isinstance(body, bytes) or body is None else b"".join(body)
        self.requests.append((method, path_and_query, dict(headers), data))
        return UpstreamResponse(
            200, [("Content-Length", "5"), ("Docker-Content-Digest", DIGEST)], iter([b"hello"]), 5
        )


class Pushes:
    def __init__(self) -> None:
        self.raise_: Exception | None = None
        self.puts: list[ManifestPut] = []

    def put(self, put: ManifestPut) -> UpstreamResponse:
        self.puts.append(put)
        if self.raise_ is not None:
            raise self.raise_
        return UpstreamResponse(201, [("Location", "/v2/team-a/app/manifests/x")], iter([]), 0)


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def pushes() -> Pushes:
    return Pushes()


@pytest.fixture
def client(registry: Registry, pushes: Pushes) -> FlaskClient:
    door = FrontDoor(Access(Tokens(), Reviews()), registry, pushes)  # type: ignore[arg-type]
    return create_app([frontdoor_blueprint(door)]).test_client()


def errors(response: Any) -> list[dict[str, Any]]:
    errs: list[dict[str, Any]] = json.loads(response.data)["errors"]
    return errs


def test_no_credentials_is_401_with_a_challenge_naming_the_token_endpoint(
    client: FlaskClient, registry: Registry
) -> None:
    for path in ("/v2/", f"/v2/team-a/app/blobs/{DIGEST}"):
        response = client.get(path)
        assert response.status_code == 401
        assert errors(response)[0]["code"] == "UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"].startswith(
            'Bearer realm="http://localhost/token",service="registry-v2"'
        )
    assert 'scope="repository:team-a/app:pull"' in response.headers["WWW-Authenticate"]
    assert registry.requests == []


def test_an_unknown_token_is_401_too(client: FlaskClient) -> None:
    assert client.get("/v2/", headers=basic("made-up")).status_code == 401
    assert client.get("/v2/", headers={"Authorization": "Bearer made-up"}).status_code == 401


def test_the_base_answers_a_known_token(client: FlaskClient) -> None:
    response = client.get("/v2/", headers=basic(VIEWER))
    assert response.status_code == 200 and json.loads(response.data) == {}
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_the_token_endpoint_hands_back_the_token_for_its_basic_credentials(
    client: FlaskClient,
) -> None:
    response = client.get("/token?service=registry-v2&scope=x", headers=basic(EDITOR))
    answer = json.loads(response.data)
    assert answer["token"] == answer["access_token"] == EDITOR
    assert client.get("/token").status_code == 401
    assert client.get("/token", headers=basic("made-up")).status_code == 401
    bearer = {"Authorization": f"Bearer {answer['token']}"}
    assert client.get("/v2/", headers=bearer).status_code == 200


def test_a_pull_streams_the_registrys_answer_and_passes_the_range_on(
    client: FlaskClient, registry: Registry
) -> None:
    response = client.get(
        f"/v2/team-a/app/blobs/{DIGEST}", headers={**basic(VIEWER), "Range": "bytes=0-4"}
    )
    assert response.status_code == 200 and response.data == b"hello"
    assert response.headers["Docker-Content-Digest"] == DIGEST
    ((method, path, headers, _),) = registry.requests
    assert (method, path) == ("GET", f"/v2/team-a/app/blobs/{DIGEST}")
    assert headers["Range"] == "bytes=0-4"  # credentials are dropped by Upstream (its tests)


def test_a_viewer_may_not_push(client: FlaskClient, registry: Registry) -> None:
    response = client.post("/v2/team-a/app/blobs/uploads/", headers=basic(VIEWER))
    assert response.status_code == 403
    (error,) = errors(response)
    assert error["code"] == "DENIED"
    assert "update on imagestreams/layers" in error["message"]
    assert registry.requests == []


def test_nobody_reads_another_namespace(client: FlaskClient) -> None:
    response = client.get("/v2/team-b/app/tags/list", headers=basic(EDITOR))
    assert response.status_code == 403


def test_an_upload_streams_the_body_up(client: FlaskClient, registry: Registry) -> None:
    response = client.put(
        f"/v2/team-a/app/blobs/uploads/abc?digest={DIGEST}",
        data=b"x" * 3000,
        headers={**basic(EDITOR), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200
    ((method, path, _, body),) = registry.requests
    assert (method, path, body) == (
        "PUT",
        f"/v2/team-a/app/blobs/uploads/abc?digest={DIGEST}",
        b"x" * 3000,
    )


def test_a_mount_from_a_repository_the_pusher_cannot_read_becomes_an_upload(
    client: FlaskClient, registry: Registry
) -> None:
    client.post(
        f"/v2/team-a/app/blobs/uploads/?mount={DIGEST}&from=team-b/secret", headers=basic(EDITOR)
    )
    client.post(
        f"/v2/team-a/app/blobs/uploads/?mount={DIGEST}&from=team-a/other", headers=basic(EDITOR)
    )
    assert [path for _, path, _, _ in registry.requests] == [
        "/v2/team-a/app/blobs/uploads/",
        f"/v2/team-a/app/blobs/uploads/?mount={DIGEST}&from=team-a/other",
    ]


def test_a_manifest_put_goes_to_the_judge_with_its_body(
    client: FlaskClient, pushes: Pushes
) -> None:
    response = client.put(
        "/v2/team-a/app/manifests/v1",
        data=b"{}",
        headers={**basic(EDITOR), "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201
    assert pushes.puts == [
        ManifestPut("team-a", "app", "v1", b"{}", "application/vnd.oci.image.manifest.v1+json")
    ]


def test_a_denied_push_is_403_denied_with_the_contracts_message(
    client: FlaskClient, pushes: Pushes
) -> None:
    message = 'ImageStream "app" is forbidden: requested usage of storage exceeds the maximum limit'
    pushes.raise_ = PushDenied(message)
    response = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert response.status_code == 403
    assert errors(response) == [{"code": "DENIED", "message": message}]


@pytest.mark.parametrize(
    "failure", [PushDenied("not known yet", retryable=True), RecordFailed("HTTP 500")]
)
def test_what_may_pass_on_retry_is_503_with_retry_after(
    client: FlaskClient, pushes: Pushes, failure: Exception
) -> None:
    pushes.raise_ = failure
    response = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert errors(response)[0]["code"] == "UNAVAILABLE"


def test_an_oversized_manifest_is_refused_unread(client: FlaskClient, pushes: Pushes) -> None:
    response = client.put(
        "/v2/team-a/app/manifests/v1", data=b"x" * (4 * 1024 * 1024 + 1), headers=basic(EDITOR)
    )
    assert response.status_code == 400 and errors(response)[0]["code"] == "SIZE_INVALID"
    assert pushes.puts == []


def test_a_registry_that_does_not_answer_is_503(client: FlaskClient, registry: Registry) -> None:
    registry.fail = True
    response = client.get(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(VIEWER))
    assert response.status_code == 503 and errors(response)[0]["code"] == "UNAVAILABLE"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("DELETE", "/v2/team-a/app/manifests/v1", 405, "UNSUPPORTED"),
        ("DELETE", f"/v2/team-a/app/blobs/{DIGEST}", 405, "UNSUPPORTED"),
        ("GET", "/v2/_catalog", 405, "UNSUPPORTED"),
        ("GET", "/v2/team-a/a/b/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/nothing-here", 404, "NAME_UNKNOWN"),
        ("POST", "/v2/team-a/app/manifests/v1", 405, "UNSUPPORTED"),
    ],
)
def test_what_the_front_door_does_not_offer(
    client: FlaskClient, registry: Registry, method: str, path: str, status: int, code: str
) -> None:
    response = client.open(path, method=method, headers=basic(EDITOR))
    assert (response.status_code, errors(response)[0]["code"]) == (status, code)
    assert registry.requests == []


def test_large_manifests_wait_for_a_slot_and_are_refused_retryably_when_none_frees(
    registry: Registry, pushes: Pushes
) -> None:
    gate = BodyGate(slots=1, wait_seconds=0.01, small_bytes=10)
    door = FrontDoor(Access(Tokens(), Reviews()), registry, pushes, gate)  # type: ignore[arg-type]
    client = create_app([frontdoor_blueprint(door)]).test_client()
    with gate.admit(None):  # another thread holds the only slot
        response = client.put("/v2/team-a/app/manifests/v1", data=b"x" * 100, headers=basic(EDITOR))
    assert response.status_code == 503 and errors(response)[0]["code"] == "UNAVAILABLE"
    assert pushes.puts == []
    small = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert small.status_code == 201


@pytest.mark.parametrize(
    "query",
    [
        f"mount={DIGEST}&%66rom=team-b/secret",  # an encoded key the registry decodes
        f"mount={DIGEST}&from=team-b%2Fsecret",
        f"mount={DIGEST}&from=team-b/x/y",  # not a repository we can check
        "mount=not-a-digest&from=team-b/secret",
        "from=team-b/secret",
    ],
)
def test_mount_parameters_that_are_not_allowed_never_reach_the_registry(
    client: FlaskClient, registry: Registry, query: str
) -> None:
    client.post(f"/v2/team-a/app/blobs/uploads/?{query}&origin=x", headers=basic(EDITOR))
    ((_, path, _, _),) = registry.requests
    assert path == "/v2/team-a/app/blobs/uploads/?origin=x"
