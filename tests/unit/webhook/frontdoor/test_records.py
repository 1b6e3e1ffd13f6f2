"""Writing a push's metadata through the API server, with its answers faked: refusals
carry the contract's message, races are retried, failures say what failed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ReadTimeoutError

from webhook.frontdoor.records import (
    CONFLICT_RETRIES,
    Denied,
    ImageRecords,
    RecordFailed,
    refusal_message,
)

NOW = datetime(2026, 11, 28, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64
QUOTA = "exceeded quota: images, requested: alauda.io/imagestreams=1, used: ..."


def api_error(status: int, message: str = "") -> ApiException:
    err = ApiException(status=status)
    err.body = json.dumps({"kind": "Status", "message": message}).encode()
    return err


def answer(obj: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(data=json.dumps(obj).encode())


class Api:
    def __init__(self) -> None:
        self.stream: dict[str, Any] | None = None
        self.create_error: Exception | None = None
        self.status_errors: list[Exception] = []
        self.status_writes: list[dict[str, Any]] = []
        self.image_error: Exception | None = None

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        if self.stream is None:
            raise api_error(404)
        return answer(self.stream)

    def create_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        if self.create_error is not None:
            raise self.create_error
        body = args[4]
        self.stream = {
            **body,
            "metadata": {**body["metadata"], "uid": "u-1", "resourceVersion": "7"},
        }
        return answer(self.stream)

    def delete_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self.deleted = (args, kwargs["body"])

    def replace_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Any:
        if self.status_errors:
            raise self.status_errors.pop(0)
        self.status_writes.append(args[5])
        return answer(args[5])

    def create_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        if self.image_error is not None:
            raise self.image_error
        return answer(args[3])


def records(api: Api) -> ImageRecords:
    return ImageRecords(api, clock=lambda: NOW)


def test_a_refusal_loses_the_api_servers_prefix_and_keeps_the_contract_message() -> None:
    prefixed = f'admission webhook "imagestreams.image.alauda.io" denied the request: {QUOTA}'
    assert refusal_message(api_error(403, prefixed)) == QUOTA
    assert refusal_message(api_error(422, "plain")) == "plain"
    broken = ApiException(status=403)
    broken.body = b"not json"
    assert refusal_message(broken) == "refused by the API server (HTTP 403)"


def test_a_new_stream_is_created_and_says_so() -> None:
    api = Api()
    stream, created = records(api).create_stream("team-a", "app")
    assert created and stream["metadata"]["uid"] == "u-1"
    assert stream["spec"] == {"lookupPolicy": {"local": False}}


def test_a_stream_created_meanwhile_is_used_as_it_is() -> None:
    api = Api()
    api.stream = {"metadata": {"name": "app", "namespace": "team-a", "uid": "other"}}
    api.create_error = api_error(409)
    stream, created = records(api).create_stream("team-a", "app")
    assert not created and stream["metadata"]["uid"] == "other"


def test_the_quota_webhooks_refusal_is_a_denial() -> None:
    api = Api()
    api.create_error = api_error(403, f'admission webhook "x" denied the request: {QUOTA}')
    with pytest.raises(Denied, match=r"^exceeded quota: images"):
        records(api).create_stream("team-a", "app")


@pytest.mark.parametrize(
    "error",
    [api_error(500), ReadTimeoutError(None, "/", "timed out")],  # type: ignore[arg-type]
)
def test_other_failures_are_retryable_and_name_the_step(error: Exception) -> None:
    api = Api()
    api.create_error = error
    with pytest.raises(RecordFailed, match="creating the ImageStream"):
        records(api).create_stream("team-a", "app")


def test_only_the_created_stream_is_deleted() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    records(api).delete_stream(stream)
    args, body = api.deleted
    assert args[2:5] == ("team-a", "imagestreams", "app")
    assert body == {"preconditions": {"uid": "u-1", "resourceVersion": "7"}}


def test_an_image_that_exists_is_the_same_content() -> None:
    api = Api()
    api.image_error = api_error(409)
    records(api).save_image({"metadata": {"name": "sha256-a"}})  # no exception


def test_a_tag_write_lost_to_a_racer_is_retried_on_a_fresh_read() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    api.status_errors = [api_error(409)]
    records(api).tag(stream, "v1", DIGEST, f"r/team-a/app@{DIGEST}")
    (written,) = api.status_writes
    assert written["status"]["tags"][0]["items"][0]["image"] == DIGEST


def test_a_tag_already_pointing_at_the_digest_writes_nothing() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    stream["status"] = {"tags": [{"tag": "v1", "items": [{"image": DIGEST}]}]}
    records(api).tag(stream, "v1", DIGEST, "ref")
    assert api.status_writes == []


def test_endless_conflicts_give_up_retryably() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    api.status_errors = [api_error(409) for _ in range(CONFLICT_RETRIES)]
    with pytest.raises(RecordFailed, match="conflicting writes"):
        records(api).tag(stream, "v1", DIGEST, "ref")


def test_the_limit_webhooks_refusal_of_a_tag_is_a_denial() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    api.status_errors = [api_error(403, "requested usage of alauda.io/image-tags exceeds")]
    with pytest.raises(Denied, match="image-tags"):
        records(api).tag(stream, "v1", DIGEST, "ref")


def test_a_stream_deleted_during_the_push_fails_retryably() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    api.status_errors = [api_error(409)]
    api.stream = None
    with pytest.raises(RecordFailed, match="deleted during the push"):
        records(api).tag(stream, "v1", DIGEST, "ref")
