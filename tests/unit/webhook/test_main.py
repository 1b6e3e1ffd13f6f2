"""Arbitrary bodies through the assembled app: never a 500, never a handler crash.

The app is wired by ``assemble_app`` exactly as ``serve`` wires it, with fake caches,
quota, authentication and recorder (``fakes``). Bodies are arbitrary JSON (huge and
overflowing numbers, deep nesting, wrong types, unicode), AdmissionReview and PushReview
shapes with arbitrary parts, and raw bytes. ``FUZZ_EXAMPLES`` raises the count for long runs.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.unit.webhook.fakes import TOKEN, fake_app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
# Numbers Python's json cannot read (over 4,300 digits): a live 500 before.
HUGE_NUMBERS = (b"9" * 5000, b"-" + b"1" * 4400)
ADMISSION_PATHS = ("/mutate/serviceaccounts", "/validate/imagestreams", "/validate/policies")
PUSH_PATH = "/v1/pushreviews"
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def client() -> FlaskClient:
    return fake_app().test_client()


CLIENT = client()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**64, -(2**63), -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e999", "-0", "NaN"]).map(float),
    st.text(max_size=20),
    st.sampled_from(["", "team-a", "kube-system", "CREATE", "UPDATE", "sha256:ab", "v1"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.one_of(
                st.text(max_size=8),
                st.sampled_from(["metadata", "spec", "status", "tags", "items", "name", "image"]),
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually the well-formed value, sometimes anything at all (inside objects)."""
    return st.one_of(value, value, value, value, json_values)


def _serviceaccounts() -> st.SearchStrategy[Any]:
    entry = st.fixed_dictionaries({"name": maybe(st.sampled_from(["app-dockercfg", "user"]))})
    return st.fixed_dictionaries(
        {
            "metadata": maybe(
                st.fixed_dictionaries(
                    {
                        "name": maybe(st.sampled_from(["app", "a" * 250])),
                        "annotations": maybe(
                            st.dictionaries(
                                st.sampled_from(
                                    [
                                        "image.alauda.io/managed-pull-secret",
                                        "image.alauda.io/internal-registry-pull-secret-ref",
                                    ]
                                ),
                                maybe(st.sampled_from(["false", "true", "app-dockercfg"])),
                            )
                        ),
                    }
                )
            ),
            "imagePullSecrets": maybe(st.lists(maybe(entry), max_size=3)),
        }
    )


def _streams() -> st.SearchStrategy[Any]:
    tag = st.fixed_dictionaries({"name": maybe(st.sampled_from(["v1", "v2", "v3"]))})
    item = st.fixed_dictionaries({"image": maybe(st.sampled_from(["sha256:a", "sha256:bb"]))})
    status_tag = st.fixed_dictionaries(
        {"tag": maybe(st.sampled_from(["v1", "v4"])), "items": maybe(st.lists(item))}
    )
    return st.fixed_dictionaries(
        {
            "metadata": maybe(st.fixed_dictionaries({"name": maybe(st.just("app"))})),
            "spec": maybe(st.fixed_dictionaries({"tags": maybe(st.lists(tag, max_size=4))})),
            "status": maybe(
                st.fixed_dictionaries({"tags": maybe(st.lists(status_tag, max_size=4))})
            ),
        }
    )


def _policies() -> st.SearchStrategy[Any]:
    quantity = maybe(st.sampled_from(["1", "-1", "1Gi", "0.5", "1e3", "abc", ""]))
    item = st.fixed_dictionaries(
        {
            "type": maybe(st.sampled_from(["alauda.io/Image", "alauda.io/ImageStream", "Pod"])),
            "max": maybe(
                st.dictionaries(
                    st.sampled_from(["storage", "alauda.io/image-tags", "alauda.io/images"]),
                    quantity,
                )
            ),
            "min": maybe(st.dictionaries(st.just("storage"), quantity)),
        }
    )
    return st.fixed_dictionaries(
        {
            "metadata": maybe(st.fixed_dictionaries({"name": maybe(st.just("p"))})),
            "spec": maybe(
                st.fixed_dictionaries(
                    {
                        "limits": maybe(st.lists(item, max_size=3)),
                        "hard": maybe(st.dictionaries(st.just("alauda.io/imagestreams"), quantity)),
                    }
                )
            ),
        }
    )


OBJECTS = {
    "/mutate/serviceaccounts": _serviceaccounts(),
    "/validate/imagestreams": _streams(),
    "/validate/policies": _policies(),
}


def admission_requests(objects: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "uid": st.text(min_size=1, max_size=12),
            "kind": st.fixed_dictionaries(
                {
                    "group": st.sampled_from(["", "image.alauda.io"]),
                    "version": st.just("v1"),
                    "kind": st.sampled_from(
                        ["ServiceAccount", "LimitRange", "ResourceQuota", "ImageStream"]
                    ),
                }
            ),
            "resource": st.fixed_dictionaries(
                {
                    "group": st.just(""),
                    "version": st.just("v1"),
                    "resource": st.sampled_from(["imagestreams", "serviceaccounts", "limitranges"]),
                }
            ),
            "subResource": st.sampled_from(["", "status"]),
            "operation": st.sampled_from(["CREATE", "UPDATE", "DELETE"]),
            "namespace": st.sampled_from(["team-a", "team-a", "team-b", "kube-system"]),
            "name": st.sampled_from(["app", ""]),
            "object": objects,
            "oldObject": st.none() | objects,
            "dryRun": st.booleans(),
            "userInfo": st.fixed_dictionaries({"username": st.just("u")}),
        }
    )


def valid_reviews(path: str) -> st.SearchStrategy[dict[str, Any]]:
    return admission_requests(OBJECTS[path]).map(
        lambda request: {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": request,
        }
    )


push_specs = st.fixed_dictionaries(
    {
        "namespace": st.sampled_from(["team-a", "team-b"]),
        "repository": st.sampled_from(["app", "new-app"]),
        "tag": st.sampled_from(["v1", "v2", "v9"]) | st.none(),
        "digest": st.sampled_from(["sha256:" + "a" * 64, "sha256:" + "b" * 64]),
        "mediaType": st.just("application/vnd.oci.image.manifest.v1+json"),
        "config": st.fixed_dictionaries(
            {"digest": st.just("sha256:c"), "size": st.integers(0, 2 * 1024 * 1024)}
        ),
        "layers": st.lists(
            st.fixed_dictionaries(
                {
                    "digest": st.sampled_from(["sha256:l1", "sha256:l2"]),
                    "size": st.integers(0, 2 * 1024 * 1024),
                }
            ),
            max_size=3,
        ),
    }
)
valid_pushes = push_specs.map(
    lambda spec: {"apiVersion": "image.alauda.io/v1", "kind": "PushReview", "spec": spec}
)


@st.composite
def one_part_broken(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A valid body with one field, at any depth, replaced by arbitrary JSON."""
    body = draw(valid)
    node: Any = body
    while True:
        key = draw(st.sampled_from(sorted(node)))
        if isinstance(node[key], dict) and node[key] and draw(st.booleans()):
            node = node[key]
            continue
        node[key] = draw(json_values)
        return body


def shapes(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Mostly valid envelopes (so the handlers run), some with one broken part, some noise."""
    return st.one_of(
        valid.map(encode),
        valid.map(encode),
        valid.map(encode),
        one_part_broken(valid).map(encode),
        st.builds(with_huge_number, valid, st.sampled_from(HUGE_NUMBERS)),
        json_values.map(encode),
        st.binary(max_size=64),
    )


def encode(body: Any) -> bytes:
    """JSON as Go or a proxy might send it: Python writes NaN/Infinity for non-finite
    floats, which json.loads reads back, so those reach the handlers too."""
    return json.dumps(body).encode()


def with_huge_number(body: dict[str, Any], number: bytes) -> bytes:
    """``body`` with one more top-level field holding a number Python cannot convert."""
    return encode(body)[:-1] + b', "n": ' + number + b"}"


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
    app = client().application
    assert set(app.blueprints) == {"admission", "pushreview", "operations"}
    assert app.name == "registry-webhook"
