"""The front door's HTTP surface with its I/O faked: who gets in, what reaches the
registry, and what clients read when something is refused."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from urllib3.exceptions import NewConnectionError

from frontdoor.access import Access
from frontdoor.blobsizes import RedirectedHead
from frontdoor.distribution import RegistryError
from frontdoor.manifestgate import ManifestGate
from frontdoor.manifests import MAX_MANIFEST_BYTES
from frontdoor.pushes import ManifestPut, PushDenied
from frontdoor.reads import ManifestReads
from frontdoor.records import RecordFailed
from frontdoor.routes import MANIFEST_BODY_SECONDS, FrontDoor, frontdoor_blueprint
from frontdoor.uploads import Uploads
from frontdoor.upstream import AnswerTooLarge, BodyIncomplete, UpstreamResponse
from localcluster.waiting import wait_for
from quota.decision import Cause, Decision
from quota.limits import Limit
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST
from quota.served import RecordedRepository
from serving.app import create_app
from serving.callerreviews import TooManyReviews, User

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


class Deletes:
    """``frontdoor.deletes.ManifestDeletes`` as the routes see it: what was asked, and the
    refusal to raise."""

    def __init__(self) -> None:
        self.manifests: list[tuple[str, str, str]] = []
        self.blobs: list[tuple[str, str, str]] = []
        self.raise_: Exception | None = None

    def delete_manifest(self, namespace: str, name: str, reference: str) -> None:
        self.manifests.append((namespace, name, reference))
        if self.raise_ is not None:
            raise self.raise_

    def check_blob(self, namespace: str, name: str, digest: str) -> None:
        self.blobs.append((namespace, name, digest))
        if self.raise_ is not None:
            raise self.raise_


class Recorded:
    """The Image API as reads see it: no cache, live streams and Images by digest."""

    def __init__(self) -> None:
        self.streams: dict[str, dict[str, Any]] = {"team-a/app": stream({"v1": DIGEST})}
        self.images: dict[str, dict[str, Any]] = {}
        self.fail = False

    def recorded(self, namespace: str, name: str) -> RecordedRepository | None:
        return None

    def stream(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.fail:
            raise RecordFailed("reading the ImageStream: HTTP 500")
        return self.streams.get(f"{namespace}/{name}")

    def image(self, digest: str) -> dict[str, Any] | None:
        return self.images.get(digest)


def stream(tags: Mapping[str, str]) -> dict[str, Any]:
    items = [{"tag": tag, "items": [{"image": digest}]} for tag, digest in tags.items()]
    return {"status": {"tags": items}}


def reads(recorded: Recorded | None = None) -> ManifestReads:
    recorded = recorded or Recorded()
    return ManifestReads(recorded, recorded)


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


class UploadRules:
    """No upload limit and room in the quota, unless a test says otherwise."""

    def __init__(self) -> None:
        self.room = Decision.allow()
        self.limit: Limit | None = None

    def upload_room(self, namespace: str, repository: str) -> Decision:
        return self.room

    def largest_image(self, namespace: str) -> Limit | None:
        return self.limit


RULES: dict[int, UploadRules] = {}
"""The upload rules of each registry fake's front door, by the fake's id."""


def uploads(registry: Registry) -> Uploads:
    return Uploads(RULES.setdefault(id(registry), UploadRules()), registry)


@pytest.fixture
def registry() -> Iterator[Registry]:
    fake = Registry()
    yield fake
    RULES.pop(id(fake), None)


@pytest.fixture
def pushes() -> Pushes:
    return Pushes()


@pytest.fixture
def deletes() -> Deletes:
    return Deletes()


@pytest.fixture
def client(registry: Registry, pushes: Pushes, recorded: Recorded, deletes: Deletes) -> FlaskClient:
    door = FrontDoor(
        Access(Tokens(), Reviews()),
        registry,  # type: ignore[arg-type]
        pushes,  # type: ignore[arg-type]
        reads=reads(recorded),
        uploads=uploads(registry),
        deletes=deletes,  # type: ignore[arg-type]
    )
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


@pytest.mark.parametrize("upload", [".", ".."])
def test_an_upload_id_that_is_a_dot_segment_never_reaches_the_registry(
    client: FlaskClient, registry: Registry, upload: str
) -> None:
    response = client.patch(
        f"/v2/team-a/app/blobs/uploads/{upload}", data=b"x", headers=basic(EDITOR)
    )
    assert response.status_code == 404 and errors(response)[0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert registry.requests == []


def test_the_registry_gets_the_path_built_from_the_checked_route(
    client: FlaskClient, registry: Registry
) -> None:
    client.post("/v2/team-a/app/blobs/uploads?x=1", headers=basic(EDITOR))
    assert [path for _, path, _, _ in registry.requests] == ["/v2/team-a/app/blobs/uploads/?x=1"]


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


def test_a_mount_of_a_blob_over_the_largest_image_becomes_a_bounded_upload(
    client: FlaskClient, registry: Registry
) -> None:
    """The mount would link the blob with no byte passing the upload bound: its size is
    asked first (the fake registry holds every blob at 5 bytes), once per digest."""
    mount = f"/v2/team-a/app/blobs/uploads/?mount={DIGEST}&from=team-a/other"
    RULES[id(registry)].limit = Limit(Decimal(4), "image-limits")
    client.post(mount, headers=basic(EDITOR))
    RULES[id(registry)].limit = Limit(Decimal(5), "image-limits")
    client.post(mount, headers=basic(EDITOR))
    assert [(method, path) for method, path, _, _ in registry.requests] == [
        ("HEAD", f"/v2/team-a/other/blobs/{DIGEST}"),
        ("POST", "/v2/team-a/app/blobs/uploads/"),
        ("POST", f"/v2/team-a/app/blobs/uploads/?mount={DIGEST}&from=team-a/other"),
    ]


def test_a_mount_whose_size_the_registry_cannot_say_becomes_a_bounded_upload() -> None:
    class NoSize(Registry):
        def request(self, method: str, *args: Any, **kwargs: Any) -> UpstreamResponse:
            answer = super().request(method, *args, **kwargs)
            return UpstreamResponse(503, [], iter([]), None) if method == "HEAD" else answer

    failing = NoSize()
    RULES[id(failing)] = UploadRules()
    RULES[id(failing)].limit = Limit(Decimal(1000), "image-limits")
    try:
        door_client(failing, Pushes()).post(
            f"/v2/team-a/app/blobs/uploads/?mount={DIGEST}&from=team-a/other",
            headers=basic(EDITOR),
        )
    finally:
        RULES.pop(id(failing))
    assert [(method, path) for method, path, _, _ in failing.requests] == [
        ("HEAD", f"/v2/team-a/other/blobs/{DIGEST}"),
        ("POST", "/v2/team-a/app/blobs/uploads/"),
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
    pushes.raise_ = PushDenied(Decision.deny(message, Cause.IMAGE_STORAGE_LIMIT))
    response = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert response.status_code == 403
    assert errors(response) == [{"code": "DENIED", "message": message}]


@pytest.mark.parametrize(
    "failure",
    [PushDenied(Decision.deny("not known yet", Cause.NOT_READY)), RecordFailed("HTTP 500")],
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


def test_a_child_manifest_over_the_limit_is_400_manifest_invalid_never_a_500(
    client: FlaskClient, pushes: Pushes
) -> None:
    """An index whose child the registry holds at over 4 MiB: reading it back to measure
    it stops at the limit (``Upstream.read``), and the push is the client's to fix."""
    child = f"/v2/team-a/app/manifests/{DIGEST}"
    pushes.raise_ = AnswerTooLarge(child, MAX_MANIFEST_BYTES)
    response = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert response.status_code == 400
    assert errors(response) == [
        {
            "code": "MANIFEST_INVALID",
            "message": "a manifest this one names is too large to judge: the registry's"
            f" answer to GET {child} is over {MAX_MANIFEST_BYTES} bytes",
        }
    ]


def test_a_registry_that_redirects_blob_heads_is_503_naming_the_setting_to_change(
    client: FlaskClient, pushes: Pushes
) -> None:
    """Not "recording the push failed; retry": no retry passes until the registry's
    configuration changes."""
    pushes.raise_ = RedirectedHead(DIGEST, 307)
    response = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert response.status_code == 503
    assert errors(response) == [
        {
            "code": "UNAVAILABLE",
            "message": f"the registry answered the HEAD of blob {DIGEST} with a redirect"
            " (HTTP 307), which carries no size: its configuration must set"
            " storage.redirect.disable: true; see the front door's install guide",
        }
    ]


def test_a_registry_that_does_not_answer_is_503(client: FlaskClient, registry: Registry) -> None:
    registry.fail = True
    response = client.get(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(VIEWER))
    assert response.status_code == 503 and errors(response)[0]["code"] == "UNAVAILABLE"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v2/_catalog", 405, "UNSUPPORTED"),
        ("GET", f"/v2/team-a/app/referrers/{DIGEST}", 404, "UNSUPPORTED"),
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
    gate = ManifestGate(slots=1, wait_seconds=0.01, small_bytes=10)
    door = FrontDoor(
        Access(Tokens(), Reviews()),
        registry,  # type: ignore[arg-type]
        pushes,  # type: ignore[arg-type]
        gate,
        reads=reads(),
        uploads=uploads(registry),
        deletes=Deletes(),  # type: ignore[arg-type]
    )
    client = create_app([frontdoor_blueprint(door)]).test_client()
    with gate.admit("team-b", 11):  # another thread holds the only slot
        response = client.put("/v2/team-a/app/manifests/v1", data=b"x" * 100, headers=basic(EDITOR))
        assert pushes.puts == []
        small = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert response.status_code == 503
    assert errors(response) == [
        {"code": "UNAVAILABLE", "message": "too many large manifests at once; retry"}
    ]
    assert response.headers["Retry-After"] == "1"
    assert small.status_code == 201  # a small one needs no slot


# --- exact answers, metrics and log lines ------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class LengthsSeen(Registry):
    """Also records the length each request was sent with."""

    def __init__(self) -> None:
        super().__init__()
        self.lengths: list[int | None] = []

    def request(
        self,
        method: str,
        path_and_query: str,
        headers: Mapping[str, str],
        body: Iterable[bytes] | bytes | None = None,
        length: int | None = None,
    ) -> UpstreamResponse:
        self.lengths.append(length)
        return super().request(method, path_and_query, headers, body, length)


class SourcesSeen(Tokens):
    def __init__(self, refuse_for: float | None = None) -> None:
        self.sources: list[str] = []
        self.refuse_for = refuse_for

    def authenticate(self, token: str, source: str) -> User | None:
        self.sources.append(source)
        if self.refuse_for is not None:
            raise TooManyReviews(self.refuse_for)
        return super().authenticate(token, source)


def door_client(registry: Registry, pushes: Pushes, tokens: Tokens | None = None) -> FlaskClient:
    access = Access(tokens or Tokens(), Reviews())
    door = FrontDoor(
        access,
        registry,  # type: ignore[arg-type]
        pushes,  # type: ignore[arg-type]
        reads=reads(),
        uploads=uploads(registry),
        deletes=Deletes(),  # type: ignore[arg-type]
    )
    return create_app([frontdoor_blueprint(door)]).test_client()


def test_an_error_is_oci_json_with_the_api_version_header(client: FlaskClient) -> None:
    response = client.get("/v2/team-a/app/tags/list")
    assert response.content_type == "application/json"
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_a_challenge_names_a_scope_only_for_a_repository(client: FlaskClient) -> None:
    for path in ("/v2/", "/token"):
        challenge = client.get(path).headers["WWW-Authenticate"]
        assert challenge == 'Bearer realm="http://localhost/token",service="registry-v2"'


def test_the_token_answer_is_json_saying_when_it_was_issued(client: FlaskClient) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    response = client.get("/token", headers=basic(EDITOR))
    after = datetime.now(UTC)
    assert response.content_type == "application/json"
    answer = json.loads(response.data)
    assert set(answer) == {"token", "access_token", "expires_in", "issued_at"}
    assert answer["expires_in"] == 60
    issued = datetime.strptime(answer["issued_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= issued <= after


def test_tokens_are_reviewed_with_the_clients_address(registry: Registry, pushes: Pushes) -> None:
    tokens = SourcesSeen()
    client = door_client(registry, pushes, tokens)
    client.get("/v2/", headers=basic(VIEWER), environ_base={"REMOTE_ADDR": "10.1.2.3"})
    client.get("/token", headers=basic(VIEWER), environ_base={"REMOTE_ADDR": "10.1.2.4"})
    assert tokens.sources == ["10.1.2.3", "10.1.2.4"]


@pytest.mark.parametrize("path", ["/v2/", "/v2/team-a/app/tags/list", "/token"])
def test_an_address_out_of_reviews_is_429_with_retry_after(
    registry: Registry, pushes: Pushes, path: str
) -> None:
    client = door_client(registry, pushes, SourcesSeen(refuse_for=2.5))
    response = client.get(path, headers=basic("made-up"))
    assert response.status_code == 429
    assert errors(response) == [
        {
            "code": "TOOMANYREQUESTS",
            "message": "too many unknown tokens from this address; retry later",
        }
    ]
    assert response.headers["Retry-After"] == "3"


def test_a_failed_record_is_503_naming_it_and_logged(
    client: FlaskClient, pushes: Pushes, caplog: pytest.LogCaptureFixture
) -> None:
    pushes.raise_ = RecordFailed("tagging: HTTP 500")
    with caplog.at_level("WARNING", logger="frontdoor.routes"):
        response = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert errors(response) == [
        {
            "code": "UNAVAILABLE",
            "message": "recording the push in the Image API failed (tagging: HTTP 500); retry",
        }
    ]
    assert "recording a push failed: tagging: HTTP 500" in caplog.messages


def test_an_unreachable_registry_is_503_and_logged_by_error_type(
    client: FlaskClient, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.fail = True
    with caplog.at_level("WARNING", logger="frontdoor.routes"):
        response = client.get(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(VIEWER))
    assert response.headers["Retry-After"] == "1"
    assert errors(response) == [
        {
            "code": "UNAVAILABLE",
            "message": "the registry behind the front door did not answer; retry",
        }
    ]
    assert "the upstream registry failed: NewConnectionError" in caplog.messages


def test_a_retryable_denial_keeps_the_judges_message(client: FlaskClient, pushes: Pushes) -> None:
    pushes.raise_ = PushDenied(Decision.deny("quota usage is not counted yet", Cause.NOT_READY))
    response = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert errors(response)[0]["message"] == "quota usage is not counted yet"
    assert response.headers["Retry-After"] == "1"


def test_a_quota_not_counted_yet_is_503_with_retry_after_not_denied(
    client: FlaskClient, pushes: Pushes
) -> None:
    """The contract: an uncounted quota is unknown, and creates are denied retryably until
    the controller counts it (at once): the client's retry passes, so no DENIED."""
    message = "status unknown for quota: q, resources: alauda.io/imagestreams"
    pushes.raise_ = PushDenied(Decision.deny(message, Cause.QUOTA_UNKNOWN))
    response = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert errors(response) == [{"code": "UNAVAILABLE", "message": message}]


def test_each_request_is_counted_by_method_route_and_status(
    client: FlaskClient, pushes: Pushes
) -> None:
    name = "registry_v2_policy_frontdoor_requests_total"
    blob = {"method": "GET", "route": "blob", "code": "200"}
    denied = {"method": "GET", "route": "tags", "code": "403"}
    before = sample(name, **blob), sample(name, **denied)
    client.get(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(VIEWER))
    client.get("/v2/team-b/app/tags/list", headers=basic(VIEWER))
    assert (sample(name, **blob), sample(name, **denied)) == (before[0] + 1, before[1] + 1)


def test_denials_are_counted_by_rule(client: FlaskClient, pushes: Pushes) -> None:
    """By the decision's cause, whatever its message says."""
    name = "registry_v2_policy_frontdoor_push_denials_total"
    before = sample(name, reason="tags"), sample(name, reason="quota")
    pushes.raise_ = PushDenied(Decision.deny("exceeded quota: q", Cause.IMAGE_TAGS_LIMIT))
    client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert (sample(name, reason="tags"), sample(name, reason="quota")) == (
        before[0] + 1,
        before[1],
    )


def test_bytes_are_counted_each_way(client: FlaskClient) -> None:
    name = "registry_v2_policy_frontdoor_bytes_total"
    received, sent = sample(name, direction="received"), sample(name, direction="sent")
    client.patch("/v2/team-a/app/blobs/uploads/u1", data=b"12345678", headers=basic(EDITOR))
    client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    client.get(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(VIEWER))
    assert sample(name, direction="received") == received + 8 + 2
    assert sample(name, direction="sent") == sent + 5 + 5


def test_each_request_is_logged_with_who_did_what(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="frontdoor.routes"):
        client.get(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(VIEWER))
        client.get("/v2/nothing-here")
    first, second = (r for r in caplog.records if r.getMessage() == "registry request")
    fields = first.fields  # type: ignore[attr-defined]
    assert {k: v for k, v in fields.items() if k != "seconds"} == {
        "method": "GET",
        "route": "blob",
        "repository": "team-a/app",
        "user": "viewer",
        "status": 200,
    }
    assert fields["seconds"] >= 0
    assert second.fields["route"] == "unknown"  # type: ignore[attr-defined]
    assert second.fields["user"] == ""  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["PATCH", "POST", "PUT"])
def test_a_body_goes_up_with_its_length(method: str, pushes: Pushes) -> None:
    registry = LengthsSeen()
    client = door_client(registry, pushes)
    path = "/v2/team-a/app/blobs/uploads/" + ("" if method == "POST" else "u1")
    client.open(path, method=method, data=b"abc", headers=basic(EDITOR))
    assert registry.requests[-1][3] == b"abc"
    assert registry.lengths == [3]


def test_a_read_sends_no_body_and_no_length(pushes: Pushes) -> None:
    registry = LengthsSeen()
    client = door_client(registry, pushes)
    name = "registry_v2_policy_frontdoor_bytes_total"
    received = sample(name, direction="received")
    client.get(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(VIEWER), data=b"ignored")
    assert registry.requests[-1][3] is None
    assert registry.lengths == [None]
    assert sample(name, direction="received") == received  # nothing went up


def test_a_refused_mount_keeps_the_other_query_parameters(
    client: FlaskClient, registry: Registry
) -> None:
    client.post(
        f"/v2/team-a/app/blobs/uploads/?a=1&mount={DIGEST}&from=team-b/secret&b=2",
        headers=basic(EDITOR),
    )
    assert registry.requests[-1][1] == "/v2/team-a/app/blobs/uploads/?a=1&b=2"


def test_a_mount_is_checked_for_the_pushing_user(registry: Registry, pushes: Pushes) -> None:
    seen: list[str] = []

    class Watching(Reviews):
        def may(
            self, user: User, namespace: str, verb: str, resource: str, subresource: str = ""
        ) -> bool:
            seen.append(f"{user.name}:{namespace}:{verb}")
            return super().may(user, namespace, verb, resource, subresource)

    door = FrontDoor(
        Access(Tokens(), Watching()),
        registry,  # type: ignore[arg-type]
        pushes,  # type: ignore[arg-type]
        reads=reads(),
        uploads=uploads(registry),
        deletes=Deletes(),  # type: ignore[arg-type]
    )
    client = create_app([frontdoor_blueprint(door)]).test_client()
    client.post(
        f"/v2/team-a/app/blobs/uploads/?mount={DIGEST}&from=team-a/o", headers=basic(EDITOR)
    )
    assert seen == ["editor:team-a:update", "editor:team-a:get"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_method_the_base_lacks_is_the_registrys_405(client: FlaskClient, method: str) -> None:
    response = client.open("/v2/", method=method, headers=basic(VIEWER))
    assert response.status_code == 405
    assert errors(response)[0]["code"] == "UNSUPPORTED"
    assert response.headers["Allow"] == "GET, HEAD"


def test_head_and_patch_reach_the_registry(client: FlaskClient, registry: Registry) -> None:
    assert client.head(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(VIEWER)).status_code == 200
    client.patch("/v2/team-a/app/blobs/uploads/u1", data=b"x", headers=basic(EDITOR))
    assert [method for method, *_ in registry.requests] == ["HEAD", "PATCH"]


def test_a_manifest_of_the_limit_passes_and_one_byte_more_says_the_limit(
    client: FlaskClient, pushes: Pushes
) -> None:
    limit = 4 * 1024 * 1024  # distribution's maxManifestBodySize
    path = "/v2/team-a/app/manifests/v1"
    client.put(path, data=b"x" * limit, headers=basic(EDITOR))
    assert [len(put.body) for put in pushes.puts] == [limit]
    response = client.put(path, data=b"x" * (limit + 1), headers=basic(EDITOR))
    assert errors(response) == [
        {"code": "SIZE_INVALID", "message": "a manifest is at most 4194304 bytes"}
    ]


def test_a_refused_pull_or_push_names_the_user_the_verb_and_the_namespace(
    client: FlaskClient,
) -> None:
    push = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(VIEWER))
    pull = client.get("/v2/team-b/app/tags/list", headers=basic(VIEWER))
    assert errors(push)[0]["message"] == (
        "viewer may not push to team-a/app: that needs update on imagestreams/layers"
        " (image.alauda.io) in namespace team-a"
    )
    assert errors(pull)[0]["message"] == (
        "viewer may not pull from team-b/app: that needs get on imagestreams/layers"
        " (image.alauda.io) in namespace team-b"
    )


def test_a_401_says_how_to_log_in(client: FlaskClient) -> None:
    assert errors(client.get("/v2/"))[0]["message"] == (
        "authentication required: log in with a Kubernetes token for the registry"
        " (a pull secret's, or kubectl create token --audience)"
    )


def test_the_base_answer_is_json(client: FlaskClient) -> None:
    assert client.get("/v2/", headers=basic(VIEWER)).content_type == "application/json"


def test_the_log_line_of_a_request_outside_any_repository_names_none(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="frontdoor.routes"):
        client.get("/v2/", headers=basic(VIEWER))
    [record] = [r for r in caplog.records if r.getMessage() == "registry request"]
    fields = record.fields  # type: ignore[attr-defined]
    assert (fields["route"], fields["repository"]) == ("base", "")
    assert isinstance(fields["seconds"], float) and 0 <= fields["seconds"] < 4


def test_the_registrys_answer_to_a_manifest_put_is_counted_as_sent(registry: Registry) -> None:
    class Answering(Pushes):
        def put(self, put: ManifestPut) -> UpstreamResponse:
            super().put(put)
            return UpstreamResponse(201, [], iter([b"abc"]), 3)

    client = door_client(registry, Answering())
    name = "registry_v2_policy_frontdoor_bytes_total"
    sent = sample(name, direction="sent")
    response = client.put("/v2/team-a/app/manifests/v1", data=b"{}", headers=basic(EDITOR))
    assert response.data == b"abc"
    assert sample(name, direction="sent") == sent + 3


def test_a_push_challenge_asks_for_pull_and_push(client: FlaskClient) -> None:
    response = client.put("/v2/team-a/app/manifests/v1", data=b"{}")
    assert response.headers["WWW-Authenticate"].endswith(',scope="repository:team-a/app:pull,push"')


def test_the_realm_is_the_host_the_client_asked(client: FlaskClient) -> None:
    response = client.get("/v2/", headers={"Host": "registry.example:5000"})
    assert 'realm="http://registry.example:5000/token"' in response.headers["WWW-Authenticate"]


def test_the_token_is_issued_in_utc_whatever_the_hosts_zone(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9, no daylight saving
    time.tzset()
    try:
        before = datetime.now(UTC).replace(microsecond=0)
        answer = json.loads(client.get("/token", headers=basic(EDITOR)).data)
        after = datetime.now(UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
    issued = datetime.strptime(answer["issued_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= issued <= after


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


# --- reads: only what the Image API records ------------------------------------------------

OTHER = "sha256:" + "b" * 64


def test_a_manifest_read_by_tag_is_forwarded_by_the_digest_the_stream_records(
    client: FlaskClient, registry: Registry
) -> None:
    for method in ("GET", "HEAD"):
        response = client.open(
            "/v2/team-a/app/manifests/v1",
            method=method,
            headers={**basic(VIEWER), "Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert response.status_code == 200
    assert [(m, p, h["Accept"]) for m, p, h, _ in registry.requests] == [
        (method, f"/v2/team-a/app/manifests/{DIGEST}", "application/vnd.oci.image.manifest.v1+json")
        for method in ("GET", "HEAD")
    ]


@pytest.mark.parametrize(
    "path",
    [
        f"/v2/team-a/app/manifests/{OTHER}",  # a digest nothing records here
        "/v2/team-a/app/manifests/v2",  # a tag the stream lacks
        f"/v2/team-a/nostream/manifests/{DIGEST}",  # a repository with no ImageStream
        "/v2/team-a/nostream/manifests/v1",
    ],
)
def test_a_manifest_nothing_records_is_404_manifest_unknown_and_never_asked_of_the_registry(
    client: FlaskClient, registry: Registry, path: str
) -> None:
    response = client.get(path, headers=basic(VIEWER))
    assert response.status_code == 404
    (error,) = errors(response)
    assert error["code"] == "MANIFEST_UNKNOWN"
    assert "is not recorded in repository team-a/" in error["message"]
    assert client.head(path, headers=basic(VIEWER)).status_code == 404
    assert registry.requests == []


def test_a_digest_pushed_by_digest_to_this_repository_is_served(
    client: FlaskClient, registry: Registry, recorded: Recorded
) -> None:
    recorded.images[OTHER] = {
        "metadata": {"annotations": {ANNOTATION_PUSHED_BY_DIGEST: "team-a/app"}},
        "dockerImageReference": f"host:5000/team-a/app@{OTHER}",
    }
    assert client.get(f"/v2/team-a/app/manifests/{OTHER}", headers=basic(VIEWER)).status_code == 200
    assert registry.requests[-1][1] == f"/v2/team-a/app/manifests/{OTHER}"


def test_the_image_api_out_of_reach_is_a_503_to_retry_never_a_forwarded_read(
    client: FlaskClient, registry: Registry, recorded: Recorded
) -> None:
    recorded.fail = True
    manifest = client.get("/v2/team-a/app/manifests/v1", headers=basic(VIEWER))
    tags = client.get("/v2/team-a/app/tags/list", headers=basic(VIEWER))
    for response in (manifest, tags):
        assert response.status_code == 503
        assert errors(response)[0]["code"] == "UNAVAILABLE"
        assert response.headers["Retry-After"] == "1"
    assert registry.requests == []


def test_the_tag_list_is_the_streams_never_the_registrys(
    client: FlaskClient, registry: Registry, recorded: Recorded
) -> None:
    recorded.streams["team-a/app"] = stream({"v2": DIGEST, "v1": DIGEST, "a": OTHER})
    response = client.get("/v2/team-a/app/tags/list", headers=basic(VIEWER))
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert json.loads(response.data) == {"name": "team-a/app", "tags": ["a", "v1", "v2"]}
    assert "Link" not in response.headers
    assert registry.requests == []


def test_a_repository_with_no_stream_has_no_tag_list(client: FlaskClient) -> None:
    response = client.get("/v2/team-a/nostream/tags/list", headers=basic(VIEWER))
    assert response.status_code == 404
    assert errors(response)[0]["code"] == "NAME_UNKNOWN"


def test_the_tag_list_pages_as_the_spec_says(client: FlaskClient, recorded: Recorded) -> None:
    recorded.streams["team-a/app"] = stream({t: DIGEST for t in ("d", "c", "b", "a")})
    first = client.get("/v2/team-a/app/tags/list?n=2", headers=basic(VIEWER))
    assert json.loads(first.data)["tags"] == ["a", "b"]
    assert first.headers["Link"] == '</v2/team-a/app/tags/list?n=2&last=b>; rel="next"'
    rest = client.get("/v2/team-a/app/tags/list?n=2&last=b", headers=basic(VIEWER))
    assert json.loads(rest.data)["tags"] == ["c", "d"]
    assert "Link" not in rest.headers


@pytest.mark.parametrize("number", ["x", "-1", "²", "9" * 5000])
def test_a_page_size_that_is_no_number_lists_every_tag(
    client: FlaskClient, recorded: Recorded, number: str
) -> None:
    recorded.streams["team-a/app"] = stream({t: DIGEST for t in ("b", "a")})
    response = client.get(f"/v2/team-a/app/tags/list?n={number}", headers=basic(VIEWER))
    assert response.status_code == 200
    assert json.loads(response.data)["tags"] == ["a", "b"]


# --- uploads ------------------------------------------------------------------------------

QUOTA_FULL = (
    "exceeded quota: images, requested: alauda.io/imagestreams=1,"
    " used: alauda.io/imagestreams=1, limited: alauda.io/imagestreams=1"
)


def test_an_upload_into_a_repository_the_caller_could_not_create_is_refused(
    client: FlaskClient, registry: Registry
) -> None:
    RULES[id(registry)].room = Decision.deny(QUOTA_FULL, Cause.QUOTA_EXCEEDED)
    response = client.post("/v2/team-a/app/blobs/uploads/", headers=basic(EDITOR))
    assert response.status_code == 403
    assert errors(response) == [{"code": "DENIED", "message": QUOTA_FULL}]
    assert registry.requests == []


def test_an_upload_declaring_more_than_the_largest_image_is_refused_unsent(
    client: FlaskClient, registry: Registry
) -> None:
    RULES[id(registry)].limit = Limit(Decimal(1000), "image-limits")
    path = "/v2/team-a/app/blobs/uploads/u1"
    within = client.patch(
        path, data=b"x" * 100, headers={**basic(EDITOR), "Content-Range": "900-999"}
    )
    assert within.status_code == 200
    response = client.patch(
        path, data=b"x" * 101, headers={**basic(EDITOR), "Content-Range": "900-1000"}
    )
    assert response.status_code == 403
    assert errors(response) == [
        {
            "code": "DENIED",
            "message": 'ImageStream "app" is forbidden: requested usage of storage exceeds the'
            " maximum limit per alauda.io/Image (1001 > 1000) set by LimitRange"
            ' "image-limits"',
        }
    ]
    # Only the chunk within the limit went up, whole; nothing of the other.
    assert [(m, p, body) for m, p, _, body in registry.requests] == [("PATCH", path, b"x" * 100)]


@pytest.mark.parametrize("limited", [True, False], ids=["limit", "no-limit"])
@pytest.mark.parametrize(
    ("method", "content_range"),
    [
        ("PATCH", "1" * 5000 + "-1"),  # past the 4,300 digits Python parses
        ("PATCH", "0-" + "9" * 20),
        ("PATCH", f"{2**63}-{2**63}"),  # 19 digits, one past an int64
        ("PATCH", "bytes 0-0/1"),  # the HTTP form, no offsets distribution reads
        ("PUT", "1" * 5000 + "-1"),
    ],
)
def test_a_content_range_no_registry_can_read_is_416_blob_upload_invalid_never_a_500(
    client: FlaskClient, registry: Registry, method: str, content_range: str, limited: bool
) -> None:
    """The reproduction: a namespace with a LimitRange, a 1-byte chunk whose range starts
    at a 5,000-digit offset (without a limit distribution would answer it with a 500)."""
    if limited:
        RULES[id(registry)].limit = Limit(Decimal(1000), "image-limits")
    response = client.open(
        "/v2/team-a/app/blobs/uploads/abc",
        method=method,
        data=b"x",
        headers={**basic(EDITOR), "Content-Range": content_range},
    )
    assert response.status_code == 416
    (error,) = errors(response)
    assert error["code"] == "BLOB_UPLOAD_INVALID"
    assert "is not <start>-<end> with offsets of at most 19 digits" in error["message"]
    assert len(error["message"]) < 300  # the range is echoed cut short
    assert registry.requests == []


def test_a_body_of_unknown_length_is_cut_once_it_passes_the_largest_image(
    client: FlaskClient, registry: Registry
) -> None:
    RULES[id(registry)].limit = Limit(Decimal(1000), "image-limits")
    response = client.post(
        "/v2/team-a/app/blobs/uploads/?digest=" + DIGEST,
        input_stream=io.BytesIO(b"x" * 1001),
        headers=basic(EDITOR),
    )
    assert response.status_code == 403
    assert (
        "exceeds the maximum limit per alauda.io/Image (1001 > 1000)"
        in (errors(response)[0]["message"])
    )
    assert registry.requests == []  # the fake reads the whole body before it records one


def test_a_body_cut_short_is_size_invalid_counted_and_closes_the_connection(
    client: FlaskClient, registry: Registry
) -> None:
    """A client gone after 3 of its 1000 bytes (gunicorn's input then just ends): the
    registry's request fails with the body (the fake reads it as urllib3 would), and the
    answer, which no one may read, says so and closes the connection."""
    before = sample(
        "registry_v2_policy_frontdoor_bodies_incomplete_total", route="upload", how="cut"
    )
    response = client.patch(
        "/v2/team-a/app/blobs/uploads/abc",
        headers={**basic(EDITOR), "Content-Type": "application/octet-stream"},
        environ_overrides={
            "wsgi.input": io.BytesIO(b"abc"),
            "wsgi.input_terminated": True,  # as gunicorn says: werkzeug does not wrap it
            "CONTENT_LENGTH": "1000",
        },
    )
    assert response.status_code == 400
    assert errors(response) == [
        {"code": "SIZE_INVALID", "message": "request body cut off after 3 bytes of 1000 bytes"}
    ]
    assert response.headers["Connection"] == "close"
    assert registry.requests == []  # the fake never got a whole body to record
    after = sample(
        "registry_v2_policy_frontdoor_bodies_incomplete_total", route="upload", how="cut"
    )
    assert after == before + 1


def test_a_body_not_sent_in_time_is_counted_as_a_timeout(registry: Registry) -> None:
    class Slow(Registry):
        def request(self, *args: Any, **kwargs: Any) -> UpstreamResponse:
            raise BodyIncomplete(5, 1000, timed_out=True)

    client = door_client(Slow(), Pushes())
    labels = {"route": "upload", "how": "timeout"}
    before = sample("registry_v2_policy_frontdoor_bodies_incomplete_total", **labels)
    response = client.patch("/v2/team-a/app/blobs/uploads/abc", data=b"x", headers=basic(EDITOR))
    assert response.status_code == 400
    assert errors(response)[0]["message"] == (
        "request body not sent in time after 5 bytes of 1000 bytes"
    )
    assert sample("registry_v2_policy_frontdoor_bodies_incomplete_total", **labels) == before + 1


# --- manifest bodies: received first, within a deadline, then gated fairly ---------------

LARGE_MANIFEST = b"{" + b" " * 20000 + b"}"
"""Over httpjson.SMALL_BODY_BYTES: it needs a slot (the fake judge takes any bytes)."""
WAIT_SECONDS = 10.0
"""For a request thread of these tests to get where the test waits for it."""


class AnyNamespace(Reviews):
    def may(
        self, user: User, namespace: str, verb: str, resource: str, subresource: str = ""
    ) -> bool:
        return super().may(user, "team-a", verb, resource, subresource)


class HeldPushes(Pushes):
    """Holds team-a's manifests in the judge until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def put(self, put: ManifestPut) -> UpstreamResponse:
        answer = super().put(put)
        if put.namespace == "team-a":
            self.release.wait(WAIT_SECONDS)
        return answer


class HeldInput:
    """A client's body that arrives only once the test says so."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reading = threading.Event()
        self.arrive = threading.Event()

    def read(self, size: int = -1, /) -> bytes:
        self.reading.set()
        assert self.arrive.wait(WAIT_SECONDS)
        data, self.data = self.data[:size], self.data[size:]
        return data


def put_in_thread(app: Flask, namespace: str, **kwargs: Any) -> tuple[threading.Thread, list[int]]:
    statuses: list[int] = []

    def put() -> None:
        response = app.test_client().put(
            f"/v2/{namespace}/app/manifests/v1", headers=basic(EDITOR), **kwargs
        )
        statuses.append(response.status_code)

    thread = threading.Thread(target=put, daemon=True)
    thread.start()
    return thread, statuses


def test_a_manifest_body_still_arriving_holds_no_slot(registry: Registry, pushes: Pushes) -> None:
    """Eight PUTs that announce 100 KB and send one byte held every slot for the whole
    body limit (issue 17, item 7): a slot is now taken by the bytes received."""
    gate = ManifestGate(slots=1, wait_seconds=0.01)
    door = FrontDoor(
        Access(Tokens(), AnyNamespace()),
        registry,  # type: ignore[arg-type]
        pushes,  # type: ignore[arg-type]
        gate,
        reads=reads(),
        uploads=uploads(registry),
        deletes=Deletes(),  # type: ignore[arg-type]
    )
    app = create_app([frontdoor_blueprint(door)])
    slow = HeldInput(LARGE_MANIFEST)
    environ = {"wsgi.input": slow, "wsgi.input_terminated": True}
    thread, statuses = put_in_thread(
        app, "team-a", environ_overrides={**environ, "CONTENT_LENGTH": str(len(LARGE_MANIFEST))}
    )
    try:
        assert slow.reading.wait(WAIT_SECONDS)
        other = app.test_client().put(
            "/v2/team-b/app/manifests/v1", data=LARGE_MANIFEST, headers=basic(EDITOR)
        )
        assert other.status_code == 201, other.text
    finally:
        slow.arrive.set()
        thread.join(WAIT_SECONDS)
    assert statuses == [201]


def test_one_namespaces_large_manifests_leave_another_a_slot(registry: Registry) -> None:
    pushes = HeldPushes()
    door = FrontDoor(
        Access(Tokens(), AnyNamespace()),
        registry,  # type: ignore[arg-type]
        pushes,  # type: ignore[arg-type]
        reads=reads(),
        uploads=uploads(registry),
        deletes=Deletes(),  # type: ignore[arg-type]
    )
    app = create_app([frontdoor_blueprint(door)])
    first, first_statuses = put_in_thread(app, "team-a", data=LARGE_MANIFEST)
    try:
        wait_for(lambda: pushes.puts, timeout=WAIT_SECONDS, interval=0.01, what="the judge")
        second = app.test_client().put(
            "/v2/team-a/app/manifests/v2", data=LARGE_MANIFEST, headers=basic(EDITOR)
        )
        assert second.status_code == 503  # team-a's share is taken
        other = app.test_client().put(
            "/v2/team-b/app/manifests/v1", data=LARGE_MANIFEST, headers=basic(EDITOR)
        )
        assert other.status_code == 201, other.text
    finally:
        pushes.release.set()
        first.join(WAIT_SECONDS)
    assert first_statuses == [201]


class Connection:
    """gunicorn's socket in the environ, as serving.tlsserver.DeadlineSocket is."""

    def __init__(self) -> None:
        self.limits: list[float] = []

    def limit_body(self, seconds: float) -> None:
        self.limits.append(seconds)


def test_a_manifest_body_gets_a_short_wall_clock_deadline_on_its_connection(
    client: FlaskClient,
) -> None:
    connection = Connection()
    response = client.put(
        "/v2/team-a/app/manifests/v1",
        data=b"{}",
        headers=basic(EDITOR),
        environ_overrides={"gunicorn.socket": connection},
    )
    assert response.status_code == 201
    assert connection.limits == [MANIFEST_BODY_SECONDS]


def test_a_manifest_cut_short_is_size_invalid_and_never_judged(
    client: FlaskClient, pushes: Pushes
) -> None:
    response = client.put(
        "/v2/team-a/app/manifests/v1",
        headers=basic(EDITOR),
        environ_overrides={
            "wsgi.input": io.BytesIO(b'{"sc'),
            "wsgi.input_terminated": True,
            "CONTENT_LENGTH": "100000",
        },
    )
    assert response.status_code == 400
    assert errors(response)[0]["code"] == "SIZE_INVALID"
    assert pushes.puts == []


def test_a_namespace_holding_its_share_of_manifest_bytes_leaves_another_room(
    registry: Registry, pushes: Pushes
) -> None:
    """Bodies are received before any slot: what bounds their memory is the bytes each
    has sent, counted per worker with a share per namespace."""
    gate = ManifestGate(held_bytes=2 * len(LARGE_MANIFEST), wait_seconds=0.01)
    door = FrontDoor(
        Access(Tokens(), AnyNamespace()),
        registry,  # type: ignore[arg-type]
        pushes,  # type: ignore[arg-type]
        gate,
        reads=reads(),
        uploads=uploads(registry),
        deletes=Deletes(),  # type: ignore[arg-type]
    )
    client = create_app([frontdoor_blueprint(door)]).test_client()
    with gate.holding("team-a") as team_a:
        team_a(len(LARGE_MANIFEST))  # another of team-a's bodies, arrived
        refused = client.put(
            "/v2/team-a/app/manifests/v2", data=LARGE_MANIFEST, headers=basic(EDITOR)
        )
        other = client.put(
            "/v2/team-b/app/manifests/v1", data=LARGE_MANIFEST, headers=basic(EDITOR)
        )
    assert refused.status_code == 503 and errors(refused)[0]["code"] == "UNAVAILABLE"
    assert refused.headers["Connection"] == "close"  # its body may be partly unread
    assert other.status_code == 201, other.text
    assert [put.namespace for put in pushes.puts] == ["team-b"]


# --- deletes ------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["v1", DIGEST])
def test_an_editor_deletes_a_manifest_and_is_answered_202(
    client: FlaskClient, deletes: Deletes, registry: Registry, reference: str
) -> None:
    response = client.delete(f"/v2/team-a/app/manifests/{reference}", headers=basic(EDITOR))
    assert response.status_code == 202, response.data
    assert response.data == b""
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert deletes.manifests == [("team-a", "app", reference)]
    assert registry.requests == []  # frontdoor.deletes reaches the registry, in its order


def test_a_viewer_may_not_delete_and_is_told_which_right_it_lacks(
    client: FlaskClient, deletes: Deletes, registry: Registry
) -> None:
    for path in ("/v2/team-a/app/manifests/v1", f"/v2/team-a/app/blobs/{DIGEST}"):
        response = client.delete(path, headers=basic(VIEWER))
        assert response.status_code == 403
        assert errors(response) == [
            {
                "code": "DENIED",
                "message": "viewer may not delete from team-a/app: that needs delete on"
                " imagestreams/layers (image.alauda.io) in namespace team-a",
            }
        ]
    assert deletes.manifests == deletes.blobs == []
    assert registry.requests == []


def test_a_delete_without_credentials_is_401_asking_for_the_delete_scope(
    client: FlaskClient, deletes: Deletes
) -> None:
    response = client.delete("/v2/team-a/app/manifests/v1")
    assert response.status_code == 401
    assert 'scope="repository:team-a/app:delete"' in response.headers["WWW-Authenticate"]
    assert deletes.manifests == []


def test_a_blob_delete_is_checked_then_forwarded(
    client: FlaskClient, deletes: Deletes, registry: Registry
) -> None:
    response = client.delete(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(EDITOR))
    assert response.status_code == 200  # the fake registry's own answer, passed on
    assert deletes.blobs == [("team-a", "app", DIGEST)]
    assert [(m, p) for m, p, _, _ in registry.requests] == [
        ("DELETE", f"/v2/team-a/app/blobs/{DIGEST}")
    ]


def test_a_blob_an_image_holds_is_denied_and_never_forwarded(
    client: FlaskClient, deletes: Deletes, registry: Registry
) -> None:
    deletes.raise_ = RegistryError("DENIED", "blob is held")
    response = client.delete(f"/v2/team-a/app/blobs/{DIGEST}", headers=basic(EDITOR))
    assert (response.status_code, errors(response)) == (
        403,
        [{"code": "DENIED", "message": "blob is held"}],
    )
    assert registry.requests == []


def test_a_delete_the_image_api_cannot_record_is_503_to_retry(
    client: FlaskClient, deletes: Deletes
) -> None:
    deletes.raise_ = RecordFailed("reading the ImageStream: HTTP 500")
    response = client.delete("/v2/team-a/app/manifests/v1", headers=basic(EDITOR))
    assert response.status_code == 503
    assert errors(response)[0]["code"] == "UNAVAILABLE"
    assert response.headers["Retry-After"] == "1"
