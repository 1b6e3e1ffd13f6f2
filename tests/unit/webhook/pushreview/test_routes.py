"""``POST /v1/pushreviews`` through Flask's test client, with fake judge, auth and recorder."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY
from werkzeug.test import TestResponse

from quota.decision import Cause, Decision
from quota.objects import Obj
from quota.push import Push
from serving.app import create_app
from serving.callerreviews import Authenticator, TooManyReviews, User
from serving.httpjson import RETRY_AFTER_SECONDS, BodyGate
from webhook.pushreview.review import MAX_BODY_BYTES
from webhook.pushreview.routes import PATH, pushreview_blueprint

TOKEN = "good-token"
ALICE = User("alice", "uid-a", ("devs",))
DIGEST = "sha256:" + "d" * 64
DENIAL = (
    'ImageStream "app" is forbidden: requested usage of alauda.io/image-tags exceeds the '
    'maximum limit per alauda.io/ImageStream (3 > 2) set by LimitRange "lr"'
)


class FakeJudge:
    def __init__(self) -> None:
        self.verdict = Decision.allow()
        self.pushes: list[Push] = []

    def judge(self, push: Push) -> Decision:
        self.pushes.append(push)
        return self.verdict


class FakeAuthenticator:
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.sources: list[str] = []
        self.retry_after: float | None = None

    def authenticate(self, token: str, source: str) -> User | None:
        self.tokens.append(token)
        self.sources.append(source)
        if self.retry_after is not None:
            raise TooManyReviews(self.retry_after)
        return ALICE if token == TOKEN else None


class FakeAuthorizer:
    def __init__(self) -> None:
        self.allowed = {("alice", "team-a")}
        self.asked: list[tuple[str, str]] = []

    def may_create_pushreview(self, user: User, namespace: str) -> bool:
        self.asked.append((user.name, namespace))
        return (user.name, namespace) in self.allowed


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[Obj, str, str, str]] = []

    def record(
        self,
        involved: Obj,
        event_type: str,
        reason: str,
        message: str,
        *,
        namespace: str | None = None,
    ) -> None:
        self.events.append((involved, event_type, reason, message))


@dataclass
class Rig:
    judge: FakeJudge = field(default_factory=FakeJudge)
    authenticator: FakeAuthenticator = field(default_factory=FakeAuthenticator)
    authorizer: FakeAuthorizer = field(default_factory=FakeAuthorizer)
    recorder: FakeRecorder = field(default_factory=FakeRecorder)
    pending: str | None = None
    gate: BodyGate = field(default_factory=BodyGate)

    def not_ready(self) -> str | None:
        return self.pending

    def client(self) -> FlaskClient:
        routes = pushreview_blueprint(
            self.judge,
            self.authenticator,
            self.authorizer,
            self.recorder,
            self.not_ready,
            self.gate,
        )
        return create_app([routes]).test_client()


@pytest.fixture
def rig() -> Rig:
    return Rig()


def review(**spec_changes: Any) -> Obj:
    spec: Obj = {
        "namespace": "team-a",
        "repository": "app",
        "tag": "v2",
        "digest": DIGEST,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": "sha256:" + "c" * 64, "size": 1469},
        "layers": [{"digest": "sha256:" + "1" * 64, "size": 2811478}],
    }
    spec.update(spec_changes)
    return {"apiVersion": "image.alauda.io/v1", "kind": "PushReview", "spec": spec}


def post(
    client: FlaskClient,
    body: Obj | bytes | None = None,
    *,
    authorization: str | None = f"Bearer {TOKEN}",
    content_type: str = "application/json",
) -> TestResponse:
    data = body if isinstance(body, bytes) else json.dumps(review() if body is None else body)
    headers = {} if authorization is None else {"Authorization": authorization}
    return client.post(PATH, data=data, content_type=content_type, headers=headers)


def assert_json_error(response: TestResponse, status: int) -> str:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    payload = response.get_json()
    assert payload["code"] == status
    message: str = payload["error"]
    assert "Traceback" not in response.get_data(as_text=True)
    return message


# --- authentication and authorization ---------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "", "Basic YWxpY2U6cHc=", "Bearer", "Bearer    ", TOKEN]
)
def test_a_missing_or_malformed_bearer_header_is_401(rig: Rig, authorization: str | None) -> None:
    response = post(rig.client(), authorization=authorization)
    assert assert_json_error(response, 401) == "a bearer token is required"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert rig.authenticator.tokens == []
    assert rig.judge.pushes == []


def test_a_rejected_token_is_401(rig: Rig) -> None:
    response = post(rig.client(), authorization="Bearer nope")
    assert assert_json_error(response, 401) == "the bearer token is not valid"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert rig.authenticator.tokens == ["nope"]
    assert rig.authorizer.asked == [] and rig.judge.pushes == []


def test_the_scheme_is_case_insensitive_and_the_token_trimmed(rig: Rig) -> None:
    response = post(rig.client(), authorization=f"bearer  {TOKEN} ")
    assert response.status_code == 200
    assert rig.authenticator.tokens == [TOKEN]


def test_an_unauthorized_user_gets_403_with_a_kubernetes_style_message(rig: Rig) -> None:
    response = post(rig.client(), review(namespace="team-b"))
    assert assert_json_error(response, 403) == (
        'user "alice" cannot create resource "pushreviews" in API group "image.alauda.io" '
        'in the namespace "team-b"'
    )
    assert rig.authorizer.asked == [("alice", "team-b")]
    assert rig.judge.pushes == []
    assert rig.recorder.events == []


# --- malformed bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        (b"{not json", "application/json", "JSON"),
        (json.dumps(review()).encode(), "text/plain", "content type"),
        (json.dumps({**review(), "kind": "Other"}).encode(), "application/json", "kind"),
        (json.dumps(review(repository="Bad_Name")).encode(), "application/json", "repository"),
        (json.dumps(review(layers=[{"digest": "x"}])).encode(), "application/json", "layers"),
    ],
)
def test_a_malformed_body_is_400_naming_the_problem(
    rig: Rig, body: bytes, content_type: str, needle: str
) -> None:
    response = post(rig.client(), body, content_type=content_type)
    assert needle in assert_json_error(response, 400)
    assert rig.judge.pushes == []
    assert rig.authorizer.asked == []


def test_a_body_over_one_mebibyte_is_400(rig: Rig) -> None:
    text = json.dumps(review())
    big = (text + " " * (MAX_BODY_BYTES + 1 - len(text))).encode()
    assert len(big) == MAX_BODY_BYTES + 1
    response = post(rig.client(), big)
    assert assert_json_error(response, 400) == f"request body exceeds {MAX_BODY_BYTES} bytes"
    assert rig.judge.pushes == []


def test_a_body_of_exactly_one_mebibyte_is_accepted(rig: Rig) -> None:
    text = json.dumps(review())
    exact = (text + " " * (MAX_BODY_BYTES - len(text))).encode()
    assert len(exact) == MAX_BODY_BYTES
    response = post(rig.client(), exact)
    assert response.status_code == 200
    assert response.get_json()["status"]["allowed"] is True


def test_get_is_not_allowed(rig: Rig) -> None:
    response = rig.client().get(PATH)
    assert_json_error(response, 405)


# --- answers -----------------------------------------------------------------------------


def test_an_allowed_push_echoes_the_review_with_status(rig: Rig) -> None:
    body = review()
    response = post(rig.client(), body)
    assert response.status_code == 200
    assert response.get_json() == {
        **body,
        "status": {"allowed": True, "reason": "", "message": ""},
    }
    assert [push.repository for push in rig.judge.pushes] == ["app"]
    assert rig.recorder.events == []


def test_a_denied_push_echoes_the_review_and_records_one_warning(rig: Rig) -> None:
    rig.judge.verdict = Decision.deny(DENIAL, Cause.IMAGE_TAGS_LIMIT)
    body = review()
    response = post(rig.client(), body)
    assert response.status_code == 200
    assert response.get_json() == {
        **body,
        "status": {"allowed": False, "reason": "Forbidden", "message": DENIAL},
    }
    assert len(rig.recorder.events) == 1
    involved, event_type, reason, message = rig.recorder.events[0]
    assert (event_type, reason) == ("Warning", "PushDenied")
    assert involved == {
        "kind": "ImageStream",
        "apiVersion": "image.alauda.io/v1",
        "name": "app",
        "namespace": "team-a",
    }
    assert message == f"push of app:v2 denied: {DENIAL}"


def test_a_denied_push_by_digest_names_the_digest_in_the_event(rig: Rig) -> None:
    rig.judge.verdict = Decision.deny("exceeded quota: q", Cause.QUOTA_EXCEEDED)
    body = review()
    del body["spec"]["tag"]
    response = post(rig.client(), body)
    assert response.get_json()["status"]["allowed"] is False
    assert "tag" not in response.get_json()["spec"]
    assert rig.judge.pushes[0].tag is None
    assert [event[3] for event in rig.recorder.events] == [
        f"push of app:{DIGEST} denied: exceeded quota: q"
    ]


def test_not_ready_denies_retryably_without_judging_or_an_event(rig: Rig) -> None:
    rig.pending = "caches not synced: images"
    response = post(rig.client())
    assert response.status_code == 200
    status = response.get_json()["status"]
    assert status["allowed"] is False
    assert status["reason"] == "ServiceUnavailable"
    assert status["message"] == "caches not synced: images; retry"
    assert rig.judge.pushes == []
    assert rig.recorder.events == []


def test_a_quota_not_counted_yet_denies_retryably_without_an_event(rig: Rig) -> None:
    """Like caches not synced: it passes on its own once the controller counts the quota,
    so nobody need act on it."""
    message = "status unknown for quota: q, resources: alauda.io/imagestreams"
    rig.judge.verdict = Decision.deny(message, Cause.QUOTA_UNKNOWN)
    response = post(rig.client())
    status = response.get_json()["status"]
    assert (status["allowed"], status["reason"], status["message"]) == (False, "Forbidden", message)
    assert rig.recorder.events == []


def test_not_ready_still_requires_authentication(rig: Rig) -> None:
    rig.pending = "caches not synced: images"
    assert post(rig.client(), authorization=None).status_code == 401


def test_an_unreachable_api_server_is_a_retryable_503(rig: Rig) -> None:
    def broken(token: str, source: str) -> User | None:
        raise ApiException(status=500, reason="etcdserver: leader changed")

    rig.authenticator.authenticate = broken  # type: ignore[method-assign]
    message = assert_json_error(post(rig.client()), 503)
    assert "retry" in message


@pytest.mark.parametrize(("wait", "header"), [(2.2, "3"), (0.01, "1"), (1.0, "1")])
def test_a_source_over_its_review_limit_gets_429_with_retry_after(
    rig: Rig, wait: float, header: str
) -> None:
    rig.authenticator.retry_after = wait
    response = post(rig.client(), authorization="Bearer unknown")
    assert "retry" in assert_json_error(response, 429)
    assert response.headers["Retry-After"] == header, "whole seconds, never 0"
    assert response.headers["Connection"] == "close"  # the body is unread
    assert rig.authorizer.asked == [] and rig.judge.pushes == []


class AudienceApi:
    """A TokenReview API that authenticates TOKEN, but only for the API server."""

    def __init__(self) -> None:
        self.specs: list[Obj] = []

    def create_token_review(self, body: Obj, **kwargs: Any) -> Any:
        self.specs.append(body["spec"])
        status = {
            "authenticated": True,
            "user": {"username": "alice"},
            "audiences": ["https://kubernetes.default.svc"],
        }
        return SimpleNamespace(data=json.dumps({**body, "status": status}).encode())


def test_a_token_for_another_audience_is_401(rig: Rig) -> None:
    api = AudienceApi()
    routes = pushreview_blueprint(
        rig.judge,
        Authenticator(api, audiences=["image-registry-webhook.alauda.io"]),
        rig.authorizer,
        rig.recorder,
        rig.not_ready,
    )
    response = post(create_app([routes]).test_client())
    assert assert_json_error(response, 401) == "the bearer token is not valid"
    assert api.specs[0]["audiences"] == ["image-registry-webhook.alauda.io"]
    assert rig.authorizer.asked == [] and rig.judge.pushes == []


def test_the_source_is_the_peer_address_never_a_forwarded_header(rig: Rig) -> None:
    client = rig.client()
    client.post(
        PATH,
        data=json.dumps(review()),
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "192.0.2.1"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert rig.authenticator.sources == ["10.1.2.3"]


def test_an_anonymous_caller_is_refused_before_its_body_is_read(rig: Rig) -> None:
    response = post(rig.client(), b"x" * (2 * 1024 * 1024), authorization=None)
    assert_json_error(response, 401)
    assert response.headers["Connection"] == "close"


# --- headers, metrics and the log line -----------------------------------------------------


def test_a_401_names_the_scheme_and_closes_the_connection(rig: Rig) -> None:
    for authorization in (None, "Bearer nope"):
        response = post(rig.client(), authorization=authorization)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="registry-v2-policy"'
        assert response.headers["Connection"] == "close"


def test_a_body_too_large_closes_the_connection(rig: Rig) -> None:
    response = post(rig.client(), b"x" * (MAX_BODY_BYTES + 1))
    assert response.status_code == 400
    assert response.headers["Connection"] == "close"


def test_an_unreachable_api_server_says_so(rig: Rig) -> None:
    def broken(token: str, source: str) -> User | None:
        raise ApiException(status=500)

    rig.authenticator.authenticate = broken  # type: ignore[method-assign]
    assert assert_json_error(post(rig.client()), 503) == (
        "cannot reach the API server to check the caller; retry"
    )


def pushes_counted(decision: str) -> float:
    return (
        REGISTRY.get_sample_value("registry_v2_policy_push_reviews_total", {"decision": decision})
        or 0.0
    )


def broken_authenticator(rig: Rig) -> None:
    def broken(token: str, source: str) -> User | None:
        raise ApiException(status=500)

    rig.authenticator.authenticate = broken  # type: ignore[method-assign]


OUTCOMES: dict[str, tuple[Callable[[Rig], None], dict[str, Any], str]] = {
    "allowed": (lambda rig: None, {}, "allowed"),
    "denied": (
        lambda rig: setattr(rig.judge, "verdict", Decision.deny(DENIAL, Cause.IMAGE_TAGS_LIMIT)),
        {},
        "denied",
    ),
    "anonymous": (lambda rig: None, {"authorization": None}, "unauthenticated"),
    "bad token": (lambda rig: None, {"authorization": "Bearer nope"}, "unauthenticated"),
    "malformed": (lambda rig: None, {"body": b"{"}, "bad_request"),
    "too large": (lambda rig: None, {"body": b"x" * (MAX_BODY_BYTES + 1)}, "bad_request"),
    "not allowed": (lambda rig: None, {"body": review(namespace="team-b")}, "forbidden"),
    "API server away": (broken_authenticator, {}, "error"),
    "throttled": (lambda rig: setattr(rig.authenticator, "retry_after", 1.0), {}, "throttled"),
    "busy": (
        lambda rig: setattr(rig, "gate", BodyGate(slots=0, wait_seconds=0)),
        {"body": b"x" * 20_000},
        "busy",
    ),
}


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_every_outcome_is_counted_under_its_decision(rig: Rig, outcome: str) -> None:
    arrange, request, decision = OUTCOMES[outcome]
    arrange(rig)
    timed = "registry_v2_policy_push_review_duration_seconds_count"
    before = pushes_counted(decision), REGISTRY.get_sample_value(timed) or 0.0
    post(rig.client(), request.get("body"), **{k: v for k, v in request.items() if k != "body"})
    assert (pushes_counted(decision), REGISTRY.get_sample_value(timed)) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_every_judged_push_is_logged_with_who_and_what(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webhook.pushreview.routes")
    post(rig.client(), review(tag=None))
    [line] = [r.fields for r in caplog.records if r.getMessage() == "pushreview"]  # type: ignore[attr-defined]
    assert 0 <= line.pop("ms") < 10_000
    assert line == {
        "namespace": "team-a",
        "repository": "app",
        "tag": "",
        "digest": DIGEST,
        "user": "alice",
        "decision": "allowed",
    }


def test_a_large_body_that_finds_no_slot_is_a_retryable_503(rig: Rig) -> None:
    rig.gate = BodyGate(slots=0, wait_seconds=0, small_bytes=10)
    response = post(rig.client())
    assert assert_json_error(response, 503) == "too many large requests at once; retry"
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert rig.judge.pushes == [] and rig.authorizer.asked == []


def test_an_anonymous_caller_is_refused_before_waiting_for_a_slot(rig: Rig) -> None:
    rig.gate = BodyGate(slots=0, wait_seconds=0, small_bytes=10)
    assert_json_error(post(rig.client(), authorization=None), 401)


class Silent(io.BytesIO):
    """The body of a client that sends nothing in time: the server's socket times out."""

    def read(self, size: int | None = -1) -> bytes:
        raise TimeoutError("the read limit is spent")

    def readinto(self, buffer: Any) -> int:
        raise TimeoutError("the read limit is spent")


def test_a_body_not_sent_in_time_is_a_408(rig: Rig) -> None:
    before = pushes_counted("bad_request")
    response = rig.client().post(
        PATH,
        input_stream=Silent(),
        environ_overrides={"CONTENT_LENGTH": "100"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert assert_json_error(response, 408) == "request body not received in time"
    assert rig.judge.pushes == []
    assert pushes_counted("bad_request") == before + 1
