"""Arbitrary bodies through the assembled app: never a 500, never a handler crash.

The app is wired by ``assemble_app`` exactly as ``serve`` wires it, with fake caches,
quota, authentication and recorder (``tests.fuzz.fakes``); bodies come from
``tests.fuzz.bodies``. ``FUZZ_EXAMPLES`` raises the count for long runs.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from quota.objects import Obj
from serving.callerreviews import UNKNOWN_TOKEN_BURST, TooManyReviews, User
from tests.fuzz.bodies import ADMISSION_PATHS, PUSH_PATH, shapes, valid_pushes, valid_reviews
from tests.fuzz.fakes import TOKEN, fake_app
from webhook import main
from webhook.config import WebhookConfig

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLIENT = fake_app().test_client()


def _verdict(answer: Any) -> str:
    response = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        return "-"
    if not response.get("allowed"):
        return "denied"
    return "patched" if "patch" in response else "allowed"


def assert_admission_answer(path: str, body: bytes, status: int, answer: Any) -> None:
    assert status in (200, 400), (path, status, answer)
    if status == 400:
        assert isinstance(answer["error"], str) and answer["code"] == 400
        return
    sent = json.loads(body)
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert response["uid"] == sent["request"]["uid"]
    assert isinstance(response["allowed"], bool)
    assert "registry webhook error; change not applied" not in response.get("warnings", [])
    if response["allowed"]:
        if "patch" in response:
            assert path == "/mutate/serviceaccounts"
            assert response["patchType"] == "JSONPatch"
            assert isinstance(json.loads(base64.b64decode(response["patch"])), list)
    else:
        assert response["status"]["code"] != 500, response["status"]
        assert isinstance(response["status"]["message"], str)


@pytest.mark.parametrize("path", ADMISSION_PATHS)
@FUZZ
@given(data=st.data())
def test_any_body_on_an_admission_path_is_answered_or_refused_never_a_500(
    path: str, data: st.DataObject
) -> None:
    body = data.draw(shapes(valid_reviews(path)), label="body")
    response = CLIENT.post(path, data=body, content_type="application/json")
    answer = response.get_json()
    event(f"{path} {response.status_code} {_verdict(answer)}")
    assert_admission_answer(path, body, response.status_code, answer)


@FUZZ
@given(body=shapes(valid_pushes))
@example(body=b'{"apiVersion": "image.alauda.io/v1", "kind": "PushReview", "spec": 1e999}')
def test_any_push_review_is_answered_or_refused_never_a_500(body: bytes) -> None:
    response = CLIENT.post(
        PUSH_PATH,
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    answer = response.get_json()
    event(f"{response.status_code} {answer.get('status', {}).get('allowed', '-')}")
    assert response.status_code in (200, 400), (response.status_code, answer)
    if response.status_code == 200:
        assert isinstance(answer["status"]["allowed"], bool)
        assert isinstance(answer["status"]["message"], str)
        assert answer["spec"] == json.loads(body)["spec"]
    else:
        assert answer["code"] == 400 and isinstance(answer["error"], str)


def test_the_app_has_one_blueprint_per_api() -> None:
    app = fake_app()
    assert set(app.blueprints) == {"admission", "pushreview", "operations"}
    assert app.name == "registry-door"


class RecordingTokenReviews:
    def __init__(self, api: object) -> None:
        self.specs: list[Obj] = []

    def create_token_review(self, body: Obj, **kwargs: Any) -> Any:
        self.specs.append(body["spec"])
        status = {"authenticated": True, "user": {"username": "registry"}, "audiences": ["a"]}
        return type("Raw", (), {"data": json.dumps({"status": status}).encode()})()


def webhook_config(audiences: list[str]) -> WebhookConfig:
    return WebhookConfig(
        namespace="ns",
        excluded_namespaces=("ns",),
        configuration_name="c",
        service_name="s",
        pushreview_token_audiences=tuple(audiences),
    )


@pytest.mark.parametrize(("configured", "sent"), [(["a", "b"], ["a", "b"]), ([], None)])
def test_serve_reviews_pushreview_tokens_for_the_configured_audiences(
    monkeypatch: pytest.MonkeyPatch, configured: list[str], sent: list[str] | None
) -> None:
    apis: list[RecordingTokenReviews] = []

    def fake_api(api: object) -> RecordingTokenReviews:
        apis.append(RecordingTokenReviews(api))
        return apis[-1]

    monkeypatch.setattr("webhook.main.client.AuthenticationV1Api", fake_api)
    authenticator = main.pushreview_authenticator(object(), webhook_config(configured))
    assert authenticator.authenticate("t", "10.0.0.1") == User("registry")
    assert apis[0].specs[0].get("audiences") == sent


def test_serve_never_rate_limits_pushreview_tokens_the_api_server_signed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry's own token is never refused because its address sent made-up ones:
    ``serve`` checks callers' tokens against the issuer's keys for the same audiences."""

    class OnlyMinted(RecordingTokenReviews):
        def create_token_review(self, body: Obj, **kwargs: Any) -> Any:
            self.specs.append(body["spec"])
            ok = body["spec"]["token"] == "minted"
            status = {"authenticated": ok, "user": {"username": "registry"}, "audiences": ["a"]}
            return type("Raw", (), {"data": json.dumps({"status": status}).encode()})()

    checked: list[tuple[Sequence[str], str]] = []

    class Keys:
        def __init__(self, fetch: object, audiences: Sequence[str]) -> None:
            self.audiences = audiences
            self.started = False

        def start(self) -> Keys:
            self.started = True
            return self

        def signed(self, token: str) -> bool:
            assert self.started, "the background refresh runs before any token is judged"
            checked.append((self.audiences, token))
            return token == "minted"

    monkeypatch.setattr("webhook.main.client.AuthenticationV1Api", OnlyMinted)
    monkeypatch.setattr("webhook.main.IssuerKeys", Keys)
    authenticator = main.pushreview_authenticator(object(), webhook_config(["a"]))
    with pytest.raises(TooManyReviews):
        for n in range(UNKNOWN_TOKEN_BURST + 1):
            authenticator.authenticate(f"made-up-{n}", "10.0.0.1")
    assert authenticator.authenticate("minted", "10.0.0.1") == User("registry")
    assert checked[-1] == (["a"], "minted")


def test_serve_records_pushreview_events_off_the_request_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written = threading.Event()
    threads: list[str] = []

    class Events:
        def __init__(self, api: object) -> None:
            pass

        def create_namespaced_event(self, namespace: str, body: Obj, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            written.set()
            return type("Raw", (), {"data": json.dumps({"metadata": {"name": "e1"}}).encode()})()

    monkeypatch.setattr("webhook.main.client.CoreV1Api", Events)
    recorder = main.pushreview_recorder(object())
    try:
        recorder.record({"kind": "ImageStream", "name": "app"}, "Warning", "PushDenied", "m")
        assert written.wait(10.0), "written by the recorder's own thread"
    finally:
        recorder.stop(10.0)
    assert threads and threads[0] != threading.current_thread().name


def test_the_servers_role_lets_it_patch_the_events_it_aggregates() -> None:
    """The recorder grows an Event's count by PATCH; without the verb every repeat denial
    is a 403 in production (the local stack runs as admin and would not notice)."""
    rbac = Path(__file__).parents[3] / "manifests" / "base" / "rbac.yaml"
    role = next(
        doc
        for doc in yaml.safe_load_all(rbac.read_text())
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"].endswith("-webhook")
    )
    verbs = {
        verb
        for rule in role["rules"]
        if "" in rule.get("apiGroups", []) and "events" in rule.get("resources", [])
        for verb in rule["verbs"]
    }
    assert {"create", "patch"} <= verbs
