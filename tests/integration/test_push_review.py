"""The PushReview API over TLS, with real TokenReview and SubjectAccessReview.

Local stack only: the registry calls our port directly, and the API server's service
proxy (the only way in from outside a kind cluster) does not pass bearer tokens on.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from serving.callerreviews import UNKNOWN_TOKEN_BURST, UNKNOWN_TOKEN_QPS
from tests.integration.support.cluster import (
    CACHE_DEADLINE,
    PROPAGATION_SECONDS,
    ClusterEnv,
    HttpResult,
)
from tests.integration.support.objects import quota, set_history, stream, stream_limits
from tests.integration.support.pushreview import JSON, PATH, Caller, push

pytestmark = pytest.mark.local_only


@pytest.fixture
def caller(cluster: ClusterEnv, namespace: str) -> Iterator[Caller]:
    cluster.kubectl("create", "serviceaccount", "registry", "-n", namespace)
    cluster.kubectl("create", "serviceaccount", "intruder", "-n", namespace)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "pushreview-creator"},
        "rules": [
            {"apiGroups": ["image.alauda.io"], "resources": ["pushreviews"], "verbs": ["create"]}
        ],
    }
    cluster.apply(role, "-n", namespace)
    cluster.kubectl(
        "create",
        "rolebinding",
        "registry-pushreviews",
        "-n",
        namespace,
        "--role=pushreview-creator",
        f"--serviceaccount={namespace}:registry",
    )
    token = cluster.kubectl("create", "token", "registry", "-n", namespace).stdout.strip()
    yield Caller(cluster, namespace, token)


def status(result: HttpResult) -> dict[str, Any]:
    assert result.status == 200, result.body
    body = result.json()
    assert body["apiVersion"] == "image.alauda.io/v1" and body["kind"] == "PushReview"
    value: dict[str, Any] = body["status"]
    return value


def test_an_allowed_push_echoes_the_review_with_status(caller: Caller) -> None:
    spec = push(caller.namespace)
    result = caller.review(spec)
    assert status(result) == {"allowed": True, "reason": "", "message": ""}
    assert result.json()["spec"] == spec


def test_a_push_over_the_image_size_limit_is_denied(cluster: ClusterEnv, caller: Caller) -> None:
    limit = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "image-limits"},
        "spec": {"limits": [{"type": "alauda.io/Image", "max": {"storage": "1Mi"}}]},
    }
    cluster.apply(limit, "-n", caller.namespace)
    # 100 (config) + 600Ki, with one layer listed twice: counted once, so it fits.
    fits = push(caller.namespace, layers=(600 * 1024,))
    fits["layers"].append(dict(fits["layers"][0]))

    def allowed() -> bool:
        return bool(status(caller.review(fits))["allowed"])

    cluster.wait(allowed, timeout=CACHE_DEADLINE, what="the push to fit")
    too_big = push(caller.namespace, layers=(600 * 1024, 600 * 1024))
    answer = status(caller.review(too_big))
    assert answer["allowed"] is False and answer["reason"] == "Forbidden"
    assert answer["message"] == (
        'ImageStream "app" is forbidden: requested usage of storage exceeds the maximum limit '
        'per alauda.io/Image (1228900 > 1Mi) set by LimitRange "image-limits"'
    )

    def denials() -> list[dict[str, Any]]:
        events = cluster.kubectl_json("get", "events", "-n", caller.namespace)["items"]
        return [e for e in events if e["reason"] == "PushDenied" and e["type"] == "Warning"]

    cluster.wait(denials, timeout=CACHE_DEADLINE, what="a PushDenied warning event")
    # A second denial of the same repository is counted on the same Event (patched).
    too_big_again = push(caller.namespace, tag="v2", layers=(600 * 1024, 600 * 1024))
    assert status(caller.review(too_big_again))["allowed"] is False

    def counted_twice() -> bool:
        return [(e["involvedObject"]["name"], e["count"]) for e in denials()] == [("app", 2)]

    cluster.wait(counted_twice, timeout=CACHE_DEADLINE, what="one PushDenied event, count 2")
    assert denials()[0]["message"].startswith("push of app:v2 denied: ")


def _stream_with_history(cluster: ClusterEnv, namespace: str, tags: dict[str, list[int]]) -> None:
    cluster.apply(stream("app", list(tags)), "-n", namespace)
    set_history(cluster, namespace, "app", tags)


def test_tag_and_image_limits_apply_to_pushes_including_by_digest(
    cluster: ClusterEnv, caller: Caller
) -> None:
    cluster.apply(
        stream_limits(**{"alauda.io/image-tags": "2", "alauda.io/images": "2"}),
        "-n",
        caller.namespace,
    )
    _stream_with_history(cluster, caller.namespace, {"v1": [1], "v2": [2]})

    def sees_stream() -> bool:
        return not status(caller.review(push(caller.namespace, tag="v3", n=1)))["allowed"]

    cluster.wait(sees_stream, timeout=CACHE_DEADLINE, what="the webhook's stream cache")
    new_tag = status(caller.review(push(caller.namespace, tag="v3", n=1)))
    assert (
        "alauda.io/image-tags exceeds the maximum limit per alauda.io/ImageStream (3 > 2)"
        in new_tag["message"]
    )
    # Re-pushing an existing tag with a known image grows nothing.
    assert status(caller.review(push(caller.namespace, tag="v1", n=2)))["allowed"] is True
    # A push by digest adds an image even without a tag.
    by_digest = status(caller.review(push(caller.namespace, tag=None, n=3)))
    assert by_digest["allowed"] is False
    assert (
        "alauda.io/images exceeds the maximum limit per alauda.io/ImageStream (3 > 2)"
        in by_digest["message"]
    )
    assert status(caller.review(push(caller.namespace, tag=None, n=1)))["allowed"] is True


def test_a_new_repository_needs_room_in_the_imagestream_quota(
    cluster: ClusterEnv, caller: Caller
) -> None:
    cluster.apply(quota({"alauda.io/imagestreams": "1"}), "-n", caller.namespace)
    cluster.apply(stream("existing"), "-n", caller.namespace)
    answer = status(caller.review(push(caller.namespace, repository="brand-new")))
    assert answer["allowed"] is False
    assert answer["message"] == (
        "exceeded quota: images, requested: alauda.io/imagestreams=1, used: "
        "alauda.io/imagestreams=1, limited: alauda.io/imagestreams=1"
    )

    def existing_allowed() -> bool:
        return bool(status(caller.review(push(caller.namespace, repository="existing")))["allowed"])

    cluster.wait(
        existing_allowed, timeout=CACHE_DEADLINE, what="pushes to the existing stream to pass"
    )


def test_callers_are_authenticated_and_authorized(cluster: ClusterEnv, caller: Caller) -> None:
    spec = push(caller.namespace)
    no_token = Caller(cluster, caller.namespace, "").review(spec)
    assert no_token.status == 401 and no_token.json()["error"]
    assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
    bad_token = caller.review(spec, token="not-a-token")
    assert bad_token.status == 401
    # A token for the registry's audience (a pull secret's) is no PushReview credential: with
    # no --pushreview-token-audiences the API server's own audiences apply.
    pull_token = cluster.kubectl(
        "create", "token", "registry", "-n", caller.namespace, "--audience=image-registry.alauda.io"
    ).stdout.strip()
    assert caller.review(spec, token=pull_token).status == 401
    intruder = cluster.kubectl("create", "token", "intruder", "-n", caller.namespace).stdout.strip()
    forbidden = caller.review(spec, token=intruder)
    assert forbidden.status == 403
    assert "pushreviews" in forbidden.json()["error"]
    # The grant is per namespace: another namespace is forbidden for the same caller.
    elsewhere = caller.review(push("default"))
    assert elsewhere.status == 403


class _FromAddress(requests.adapters.HTTPAdapter):
    """Connects from another loopback address, so the server sees another client."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


FLOOD_ADDRESS = "127.0.0.2"
"""Linux routes all of 127/8 to loopback: a second client address for free."""


def test_made_up_tokens_cost_a_bounded_number_of_token_reviews(
    cluster: ClusterEnv, caller: Caller
) -> None:
    stack = cluster.stack
    assert stack is not None
    flooder = requests.Session()
    flooder.mount("https://", _FromAddress(FLOOD_ADDRESS))
    spec = push(caller.namespace)
    body = json.dumps({"apiVersion": "image.alauda.io/v1", "kind": "PushReview", "spec": spec})

    def review_from_flooder(token: str) -> requests.Response:
        return flooder.post(
            stack.webhook_url + PATH,
            data=body,
            headers={**JSON, "Authorization": f"Bearer {token}"},
            verify=str(stack.certs_dir / "ca.crt"),
            timeout=30,
        )

    made_before = cluster.metric("registry_v2_policy_token_reviews_total")
    started = time.monotonic()
    statuses = [review_from_flooder(f"made-up-{uuid.uuid4().hex}").status_code for _ in range(100)]
    elapsed = time.monotonic() - started
    made = cluster.metric("registry_v2_policy_token_reviews_total") - made_before
    # A full bucket, then its refill while we sent.
    assert made <= UNKNOWN_TOKEN_BURST + UNKNOWN_TOKEN_QPS * elapsed
    assert statuses.count(401) == made, "every request either made a review or got 429"
    assert statuses.count(429) == 100 - made
    throttled = review_from_flooder("made-up-once-more")
    assert throttled.status_code == 429 and throttled.json()["code"] == 429
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 1 / UNKNOWN_TOKEN_QPS
    # The limit is per address: the registry, at its own address, is not slowed down...
    fresh = cluster.kubectl("create", "token", "registry", "-n", caller.namespace).stdout.strip()
    assert caller.review(spec, token=fresh).status == 200
    # ...and the flooding address gets a review again once its bucket refills.
    other = cluster.kubectl("create", "token", "registry", "-n", caller.namespace).stdout.strip()
    cluster.wait(
        lambda: review_from_flooder(other).status_code == 200,
        timeout=retry_after + PROPAGATION_SECONDS,
        what="a new valid token to be reviewed after the refill",
    )


@pytest.mark.parametrize(
    ("body", "headers", "words"),
    [
        (b"{nope", JSON, "not valid JSON"),
        (b"[]", JSON, "JSON object"),
        (
            json.dumps({"apiVersion": "v1", "kind": "PushReview", "spec": {}}).encode(),
            JSON,
            "apiVersion",
        ),
        (
            json.dumps({"apiVersion": "image.alauda.io/v1", "kind": "PushReview"}).encode(),
            JSON,
            "spec",
        ),
        (b"{}", {"Content-Type": "text/plain"}, "content type"),
    ],
)
def test_malformed_push_reviews_get_400(
    caller: Caller, body: bytes, headers: dict[str, str], words: str
) -> None:
    result = caller.raw(body, headers=headers)
    assert result.status == 400
    assert words in result.json()["error"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"namespace": "Not_A_Namespace"}, "spec.namespace"),
        ({"repository": ""}, "spec.repository"),
        ({"tag": "bad tag"}, "spec.tag"),
        ({"digest": "md5"}, "spec.digest"),
        ({"layers": [{"digest": "sha256:" + "a" * 64, "size": -1}]}, "spec.layers[0].size"),
        ({"config": {"digest": "sha256:" + "a" * 64}}, "spec.config.size"),
        # The front door's digest rule: a registered algorithm has its exact encoding.
        ({"layers": [{"digest": "sha256:aa", "size": 1}]}, "spec.layers[0].digest"),
        ({"config": {"digest": "sha512:" + "a" * 64, "size": 1}}, "spec.config.digest"),
    ],
)
def test_invalid_push_review_fields_are_named(
    caller: Caller, change: dict[str, Any], words: str
) -> None:
    result = caller.review({**push(caller.namespace), **change})
    assert result.status == 400
    assert words in result.json()["error"]
