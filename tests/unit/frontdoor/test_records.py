"""Writing a push's metadata through the API server, with its answers faked: refusals
carry the contract's message, races are retried, failures say what failed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ReadTimeoutError

from frontdoor.records import (
    CONFLICT_RETRIES,
    Denied,
    ImageRecords,
    RecordFailed,
    StreamGone,
    refusal,
)
from quota.decision import Cause, Decision

NOW = datetime(2026, 11, 28, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64
QUOTA = "exceeded quota: images, requested: alauda.io/imagestreams=1, used: ..."


REASONS = {403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid", 500: ""}
"""The reason the API server gives each status here (a 409 of a create: ``already_exists``)."""


def api_error(
    status: int, message: str = "", *, reason: str | None = None, details: Any = None
) -> ApiException:
    """An ApiException with the ``Status`` body the API server sends."""
    err = ApiException(status=status)
    body: dict[str, Any] = {"kind": "Status", "message": message, "code": status}
    body["reason"] = REASONS.get(status, "") if reason is None else reason
    if details is not None:
        body["details"] = details
    err.body = json.dumps(body).encode()
    return err


def already_exists() -> ApiException:
    """A create that lost the race: 409 AlreadyExists (not a Conflict)."""
    return api_error(409, "already exists", reason="AlreadyExists")


def webhook_denial(cause: Cause, message: str) -> ApiException:
    """Our admission webhook's denial as the API server hands it to the writer: the
    message prefixed, the webhook's Status details passed on as they are."""
    prefixed = f'admission webhook "imagestreams.image.alauda.io" denied the request: {message}'
    details = {"causes": [{"reason": str(cause), "message": message}]}
    return api_error(403, prefixed, details=details)


def answer(obj: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(data=json.dumps(obj).encode())


class Api:
    def __init__(self) -> None:
        self.stream: dict[str, Any] | None = None
        self.create_error: Exception | None = None
        self.status_errors: list[Exception] = []
        self.status_writes: list[dict[str, Any]] = []
        self.image_error: Exception | None = None
        self.images: dict[str, dict[str, Any]] = {}
        self.read_error: Exception | None = None
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("get_namespaced_custom_object", args, kwargs))
        if self.stream is None:
            raise api_error(404)
        return answer(self.stream)

    def create_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("create_namespaced_custom_object", args, kwargs))
        if self.create_error is not None:
            raise self.create_error
        body = args[4]
        self.stream = {
            **body,
            "metadata": {**body["metadata"], "uid": "u-1", "resourceVersion": "7"},
        }
        return answer(self.stream)

    def delete_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("delete_namespaced_custom_object", args, kwargs))
        self.deleted = (args, kwargs["body"])
        return answer({"kind": "Status", "status": "Success"})

    def replace_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("replace_namespaced_custom_object_status", args, kwargs))
        if self.status_errors:
            raise self.status_errors.pop(0)
        self.status_writes.append(args[5])
        return answer(args[5])

    def create_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("create_cluster_custom_object", args, kwargs))
        if self.image_error is not None:
            raise self.image_error
        return answer(args[3])

    def get_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("get_cluster_custom_object", args, kwargs))
        if self.read_error is not None:
            raise self.read_error
        if args[3] not in self.images:
            raise api_error(404)
        return answer(self.images[args[3]])


def records(api: Api) -> ImageRecords:
    return ImageRecords(api, clock=lambda: NOW)


def test_our_webhooks_refusal_is_read_from_the_status_details_with_its_cause() -> None:
    """The rule and the contract's message come from ``details.causes``, never from the
    prefixed Status message."""
    assert refusal(webhook_denial(Cause.QUOTA_EXCEEDED, QUOTA)) == Decision.deny(
        QUOTA, Cause.QUOTA_EXCEEDED
    )


def test_a_refusal_from_anyone_else_keeps_the_status_message() -> None:
    assert refusal(api_error(422, "plain")) == Decision.deny("plain", Cause.REFUSED)
    foreign = api_error(403, "x", details={"causes": [{"reason": "FieldValueInvalid"}]})
    assert refusal(foreign) == Decision.deny("x", Cause.REFUSED)
    broken = ApiException(status=403)
    broken.body = b"not json"
    assert refusal(broken).message == "refused by the API server (HTTP 403)"


def test_a_new_stream_is_created_and_says_so() -> None:
    api = Api()
    stream, created = records(api).create_stream("team-a", "app")
    assert created and stream["metadata"]["uid"] == "u-1"
    assert stream["spec"] == {"lookupPolicy": {"local": False}}


def test_a_stream_created_meanwhile_is_used_as_it_is() -> None:
    api = Api()
    api.stream = {"metadata": {"name": "app", "namespace": "team-a", "uid": "other"}}
    api.create_error = already_exists()
    stream, created = records(api).create_stream("team-a", "app")
    assert not created and stream["metadata"]["uid"] == "other"


def test_the_quota_webhooks_refusal_is_a_denial() -> None:
    api = Api()
    api.create_error = webhook_denial(Cause.QUOTA_EXCEEDED, QUOTA)
    with pytest.raises(Denied, match=r"^exceeded quota: images") as denied:
        records(api).create_stream("team-a", "app")
    assert denied.value.decision == Decision.deny(QUOTA, Cause.QUOTA_EXCEEDED)


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
    api.image_error = already_exists()
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
    message = "requested usage of alauda.io/image-tags exceeds"
    api.status_errors = [webhook_denial(Cause.IMAGE_TAGS_LIMIT, message)]
    with pytest.raises(Denied, match=r"^requested usage of alauda.io/image-tags") as denied:
        records(api).tag(stream, "v1", DIGEST, "ref")
    assert denied.value.decision.cause is Cause.IMAGE_TAGS_LIMIT


def test_a_stream_deleted_during_the_push_fails_retryably() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    api.status_errors = [api_error(409)]
    api.stream = None
    with pytest.raises(RecordFailed, match="deleted during the push"):
        records(api).tag(stream, "v1", DIGEST, "ref")


OPTIONS = {"_preload_content": False, "_request_timeout": 10.0}
"""Every call streams its answer raw (we parse it) and is bounded in time."""


def test_a_stream_is_read_live_from_the_image_api() -> None:
    api = Api()
    api.stream = {"metadata": {"name": "app"}}
    assert records(api).stream("team-a", "app") == {"metadata": {"name": "app"}}
    assert api.calls == [
        (
            "get_namespaced_custom_object",
            ("image.alauda.io", "v1", "team-a", "imagestreams", "app"),
            OPTIONS,
        )
    ]


def test_a_new_stream_is_created_exactly_so() -> None:
    api = Api()
    records(api).create_stream("team-a", "app")
    body = {
        "apiVersion": "image.alauda.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "app", "namespace": "team-a"},
        "spec": {"lookupPolicy": {"local": False}},
    }
    assert api.calls == [
        (
            "create_namespaced_custom_object",
            ("image.alauda.io", "v1", "team-a", "imagestreams", body),
            OPTIONS,
        )
    ]


def test_a_conflicting_create_reads_the_same_stream_back() -> None:
    api = Api()
    api.stream = {"metadata": {"name": "app", "namespace": "team-a", "uid": "other"}}
    api.create_error = already_exists()
    records(api).create_stream("team-a", "app")
    assert api.calls[1] == (
        "get_namespaced_custom_object",
        ("image.alauda.io", "v1", "team-a", "imagestreams", "app"),
        OPTIONS,
    )


def test_a_stream_created_and_deleted_meanwhile_fails_retryably() -> None:
    api = Api()
    api.create_error = already_exists()
    with pytest.raises(RecordFailed, match=r"^the ImageStream was created and deleted meanwhile$"):
        records(api).create_stream("team-a", "app")


def test_an_image_is_created_cluster_wide_exactly_so() -> None:
    api = Api()
    image = {"metadata": {"name": "sha256-a"}}
    records(api).save_image(image)
    assert api.calls == [
        ("create_cluster_custom_object", ("image.alauda.io", "v1", "images", image), OPTIONS)
    ]


def test_the_delete_of_an_empty_stream_names_it_and_its_uid() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    records(api).delete_stream(stream)
    assert api.calls[-1] == (
        "delete_namespaced_custom_object",
        ("image.alauda.io", "v1", "team-a", "imagestreams", "app"),
        {"body": {"preconditions": {"uid": "u-1", "resourceVersion": "7"}}, **OPTIONS},
    )


def test_a_failed_delete_is_logged_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise api_error(500, "boom")

    api.delete_namespaced_custom_object = refuse  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="frontdoor.records"):
        records(api).delete_stream(stream)
    [record] = caplog.records
    assert record.getMessage().startswith(
        "could not delete the empty ImageStream after a failed push: (500)"
    )


def test_a_tag_is_written_to_the_streams_status_with_its_reference() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    api.status_errors = [api_error(409)]
    records(api).tag(stream, "v1", DIGEST, "r/team-a/app@x")
    get, replace = api.calls[-2:]
    assert get == (
        "get_namespaced_custom_object",
        ("image.alauda.io", "v1", "team-a", "imagestreams", "app"),
        OPTIONS,
    )
    name, args, kwargs = replace
    assert (name, args[:5], kwargs) == (
        "replace_namespaced_custom_object_status",
        ("image.alauda.io", "v1", "team-a", "imagestreams", "app"),
        OPTIONS,
    )
    [event] = args[5]["status"]["tags"][0]["items"]
    assert event["dockerImageReference"] == "r/team-a/app@x"


@pytest.mark.parametrize("status", [403, 422])
def test_a_refused_write_of_any_kind_is_a_denial(status: int) -> None:
    """403 is a webhook's refusal, 422 the API server's validation: both are final."""
    api = Api()
    api.create_error = api_error(status, "no room")
    with pytest.raises(Denied, match=r"^no room$"):
        records(api).create_stream("team-a", "app")
    api.create_error = None
    stream, _ = records(api).create_stream("team-a", "app")
    api.image_error = api_error(status, "too big")
    with pytest.raises(Denied, match=r"^too big$"):
        records(api).save_image({})
    api.status_errors = [api_error(status, "too many tags")]
    with pytest.raises(Denied, match=r"^too many tags$"):
        records(api).tag(stream, "v1", DIGEST, "ref")


def test_other_api_errors_name_the_step_and_the_status() -> None:
    api = Api()
    api.create_error = api_error(500)
    with pytest.raises(RecordFailed, match=r"^creating the ImageStream: HTTP 500$"):
        records(api).create_stream("team-a", "app")
    api.create_error = None
    stream, _ = records(api).create_stream("team-a", "app")
    api.image_error = api_error(500)
    with pytest.raises(RecordFailed, match=r"^creating the Image: HTTP 500$"):
        records(api).save_image({})
    api.status_errors = [api_error(500)]
    with pytest.raises(RecordFailed, match=r"^tagging: HTTP 500$"):
        records(api).tag(stream, "v1", DIGEST, "ref")

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise api_error(503)

    api.get_namespaced_custom_object = unavailable  # type: ignore[method-assign]
    with pytest.raises(RecordFailed, match=r"^reading the ImageStream: HTTP 503$"):
        records(api).stream("team-a", "app")


def test_unreachable_api_server_failures_name_the_step_and_the_error() -> None:
    timeout = ReadTimeoutError(None, "/", "timed out")  # type: ignore[arg-type]

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise timeout

    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    steps: list[tuple[str, Callable[[ImageRecords], object], str]] = [
        (
            "get_namespaced_custom_object",
            lambda r: r.stream("team-a", "app"),
            "reading the ImageStream",
        ),
        (
            "create_namespaced_custom_object",
            lambda r: r.create_stream("n", "a"),
            "creating the ImageStream",
        ),
        ("create_cluster_custom_object", lambda r: r.save_image({}), "creating the Image"),
        (
            "replace_namespaced_custom_object_status",
            lambda r: r.tag(stream, "v1", DIGEST, "x"),
            "tagging",
        ),
    ]
    for method, call, step in steps:
        broken = Api()
        setattr(broken, method, fail)
        with pytest.raises(RecordFailed, match=f"^{step}: ReadTimeoutError$"):
            call(records(broken))


def test_an_answer_that_is_not_an_object_fails_retryably() -> None:
    class ListAnswer(Api):
        def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
            return SimpleNamespace(data=b"[]")

    with pytest.raises(RecordFailed, match=r"^the API server's answer is not an object$"):
        records(ListAnswer()).stream("team-a", "app")


def test_a_refusal_without_a_message_names_the_status() -> None:
    bare = ApiException(status=403)
    bare.body = json.dumps({"kind": "Status"}).encode()
    assert refusal(bare) == Decision.deny("refused by the API server (HTTP 403)", Cause.REFUSED)


def test_a_stream_deleted_during_the_push_says_so_exactly() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    api.status_errors = [api_error(409)]
    api.stream = None
    with pytest.raises(RecordFailed, match=r"^the ImageStream was deleted during the push$"):
        records(api).tag(stream, "v1", DIGEST, "ref")


def test_an_image_is_read_by_the_name_a_push_gives_it_and_none_when_absent() -> None:
    api = Api()
    image = {"metadata": {"name": "sha256-" + "a" * 64}, "dockerImageReference": "r/x@d"}
    api.images["sha256-" + "a" * 64] = image
    assert records(api).image(DIGEST) == image
    assert api.calls[-1][1] == ("image.alauda.io", "v1", "images", "sha256-" + "a" * 64)
    assert api.calls[-1][2]["_request_timeout"] == 10.0
    assert records(api).image("sha256:" + "b" * 64) is None


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (api_error(403), "reading the Image: HTTP 403"),
        (
            ReadTimeoutError(None, "/", "timed out"),  # type: ignore[arg-type]
            "reading the Image: ReadTimeoutError",
        ),
    ],
)
def test_an_image_that_cannot_be_read_is_a_retryable_failure(error: Exception, said: str) -> None:
    api = Api()
    api.read_error = error
    with pytest.raises(RecordFailed, match=said):
        records(api).image(DIGEST)


def test_only_a_create_that_lost_the_race_reads_the_winner_back() -> None:
    """A create's 409 is AlreadyExists; any other 409 (a Conflict) is no race won by
    someone else, and is retried by the client, not read as the winner's stream."""
    api = Api()
    api.stream = {"metadata": {"name": "app", "namespace": "team-a", "uid": "other"}}
    api.create_error = api_error(409, "conflict", reason="Conflict")
    with pytest.raises(RecordFailed, match=r"^creating the ImageStream: HTTP 409$"):
        records(api).create_stream("team-a", "app")
    api.image_error = api_error(409, "conflict", reason="Conflict")
    with pytest.raises(RecordFailed, match=r"^creating the Image: HTTP 409$"):
        records(api).save_image({})


def test_a_tag_write_carries_the_resource_version_it_was_computed_from() -> None:
    """The precondition that keeps a stale (remembered) stream from overwriting another
    writer's tags: the API server answers 409 to an older resourceVersion."""
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    records(api).tag(stream, "v1", DIGEST, "ref")
    (written,) = api.status_writes
    assert written["metadata"]["resourceVersion"] == "7"


def test_a_tag_write_returns_the_stream_as_written() -> None:
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    written = records(api).tag(stream, "v1", DIGEST, "ref")
    assert written["status"]["tags"][0]["items"][0]["image"] == DIGEST


def test_a_live_stream_already_naming_the_digest_is_returned_unasked() -> None:
    """Only a stream just read live: one remembered from an earlier write is confirmed
    live first (below), as no write carries its resourceVersion to be refused."""
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    already = {**stream, "status": {"tags": [{"tag": "v1", "items": [{"image": DIGEST}]}]}}
    api.calls.clear()
    assert records(api).tag(already, "v1", DIGEST, "ref", remembered=False) is already
    assert api.calls == []


D1, D2 = DIGEST, "sha256:" + "d" * 64


def pointing(stream: dict[str, Any], version: str, *digests: str) -> dict[str, Any]:
    """``stream`` at ``version`` with ``latest`` pointing at ``digests[0]`` (newest first)."""
    items = [{"image": d, "dockerImageReference": f"ref@{d}"} for d in digests]
    return {
        **stream,
        "metadata": {**stream["metadata"], "resourceVersion": version},
        "status": {"tags": [{"tag": "latest", "items": items}]},
    }


def test_a_remembered_tag_another_push_moved_since_is_written_back_on_the_live_stream() -> None:
    """Our last write set latest -> D1 (remembered at 10); another worker's moved it to
    D2 (11). A push of latest -> D1 from the remembered copy would write nothing (no 409)
    while the registry's tag moves to D1: the live stream is read and the tag written."""
    api = Api()
    created, _ = records(api).create_stream("team-a", "app")
    remembered = pointing(created, "10", D1)
    api.stream = pointing(created, "11", D2, D1)
    records(api).tag(remembered, "latest", D1, "ref", remembered=True)
    (written,) = api.status_writes
    assert written["metadata"]["resourceVersion"] == "11"
    assert [i["image"] for i in written["status"]["tags"][0]["items"]] == [D1, D2, D1]


def test_a_remembered_tag_still_current_is_confirmed_by_one_live_read_and_not_written() -> None:
    api = Api()
    created, _ = records(api).create_stream("team-a", "app")
    api.stream = pointing(created, "10", D1)
    api.calls.clear()
    assert records(api).tag(api.stream, "latest", D1, "ref", remembered=True) == api.stream
    assert [call for call, _, _ in api.calls] == ["get_namespaced_custom_object"]
    assert api.status_writes == []


def test_a_remembered_tag_whose_stream_was_deleted_since_is_not_counted_recorded() -> None:
    """The stream is gone and the watch cache has not seen it: a re-push of the same tag
    and digest must not succeed with no ImageStream (and no alauda.io/imagestreams
    charge) while the registry's tag moves."""
    api = Api()
    created, _ = records(api).create_stream("team-a", "app")
    remembered = pointing(created, "10", D1)
    api.stream = None
    with pytest.raises(StreamGone, match=r"^the ImageStream was deleted during the push$"):
        records(api).tag(remembered, "latest", D1, "ref", remembered=True)
    assert api.status_writes == []


def test_the_live_read_of_a_remembered_stream_costs_no_conflict_retry() -> None:
    """Confirming a remembered stream is a read, not a lost write: the writes that may
    conflict are still ``CONFLICT_RETRIES``."""
    api = Api()
    created, _ = records(api).create_stream("team-a", "app")
    api.stream = pointing(created, "11", D2)
    api.status_errors = [api_error(409) for _ in range(CONFLICT_RETRIES - 1)]
    records(api).tag(pointing(created, "10", D1), "latest", D1, "ref", remembered=True)
    assert len(api.status_writes) == 1


def test_a_stale_stream_is_read_again_and_its_tags_kept() -> None:
    """A remembered stream another push has written since: the 409 re-reads it live, and
    the tag is added to what is stored, never to the stale copy."""
    api = Api()
    stale, _ = records(api).create_stream("team-a", "app")
    other = [{"tag": "other", "items": [{"image": DIGEST}]}]
    api.stream = {**stale, "metadata": {**stale["metadata"], "resourceVersion": "9"}}
    api.stream["status"] = {"tags": other}
    api.status_errors = [api_error(409)]
    records(api).tag(stale, "v1", "sha256:" + "b" * 64, "ref")
    (written,) = api.status_writes
    assert [t["tag"] for t in written["status"]["tags"]] == ["other", "v1"]
    assert written["metadata"]["resourceVersion"] == "9"


def test_a_stream_deleted_since_it_was_remembered_is_read_again() -> None:
    """A 404 (the stream is gone, or was deleted and made again) re-reads it live; gone,
    it is ``StreamGone``, which a push answers by creating it as a fresh push would."""
    api = Api()
    stream, _ = records(api).create_stream("team-a", "app")
    api.status_errors = [api_error(404)]
    api.stream = {
        **stream,
        "metadata": {**stream["metadata"], "uid": "u-2", "resourceVersion": "12"},
    }
    records(api).tag(stream, "v1", DIGEST, "ref")
    (written,) = api.status_writes
    assert written["metadata"]["uid"] == "u-2"
    api.status_errors = [api_error(404)]
    api.stream = None
    with pytest.raises(StreamGone, match=r"^the ImageStream was deleted during the push$"):
        records(api).tag(stream, "v2", DIGEST, "ref", remembered=True)


def test_a_stream_gone_is_still_a_retryable_record_failure() -> None:
    """To every caller that does not create it again (a stream read live that went
    during the push): the client retries, as before."""
    assert issubclass(StreamGone, RecordFailed)
