"""A delete's metadata written and read through the API server, its answers faked: the
status before the spec, races reported for a fresh decision, Images deleted only as read."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from frontdoor.deleterecords import LIST_PAGE_SIZE, Conflict, DeleteRecords
from frontdoor.records import Denied, RecordFailed
from quota.deletes import StreamChange


def api_error(status: int, reason: str = "") -> ApiException:
    err = ApiException(status=status)
    err.body = json.dumps({"kind": "Status", "code": status, "reason": reason}).encode()
    return err


def answer(obj: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(data=json.dumps(obj).encode())


class Api:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.errors: dict[str, Exception] = {}
        self.pages: list[dict[str, Any]] = []

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.calls.append((name, args, kwargs))
        if name in self.errors:
            raise self.errors[name]

    def replace_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Any:
        self._call("status", args, kwargs)
        return answer({**args[5], "metadata": {**args[5]["metadata"], "resourceVersion": "8"}})

    def replace_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self._call("spec", args, kwargs)
        return answer(args[5])

    def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self._call("list", args, kwargs)
        return answer(self.pages.pop(0))

    def get_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self._call("get", args, kwargs)
        return answer(IMAGE)

    def delete_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self._call("delete", args, kwargs)
        return answer({"kind": "Status", "status": "Success"})

    def patch_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self._call("patch", args, kwargs)
        return answer({})


STREAM = {"metadata": {"namespace": "ns", "name": "app", "resourceVersion": "7"}, "spec": {}}
IMAGE = {"metadata": {"name": "sha256-aa", "uid": "u1", "resourceVersion": "3"}}


def test_the_status_is_written_before_the_spec_each_with_the_version_read() -> None:
    api = Api()
    DeleteRecords(api).write(STREAM, StreamChange({"tags": []}, {"tags": []}, frozenset()))
    assert [name for name, _, _ in api.calls] == ["status", "spec"]
    status_body, spec_body = api.calls[0][1][5], api.calls[1][1][5]
    assert status_body["metadata"]["resourceVersion"] == "7"
    assert status_body["status"] == {"tags": []}
    assert spec_body["metadata"]["resourceVersion"] == "8"  # the status write's answer
    assert spec_body["spec"] == {"tags": []}


def test_a_write_answers_the_resource_version_it_was_given() -> None:
    """What a delete waits for the stream cache to hold before it trusts it."""
    api = Api()
    written = DeleteRecords(api).write(STREAM, StreamChange({"tags": []}, None, frozenset()))
    assert written == "8"


def test_one_image_is_read_by_its_object_name_and_a_missing_one_is_none() -> None:
    api = Api()
    assert DeleteRecords(api).image("sha256:aa") == IMAGE
    assert api.calls[0][1][2:] == ("images", "sha256-aa")
    api.errors["get"] = api_error(404, "NotFound")
    assert DeleteRecords(api).image("sha256:aa") is None
    api.errors["get"] = api_error(500)
    with pytest.raises(RecordFailed, match="reading an Image: HTTP 500"):
        DeleteRecords(api).image("sha256:aa")


def test_an_unchanged_part_is_not_written() -> None:
    api = Api()
    DeleteRecords(api).write(STREAM, StreamChange(None, {"tags": []}, frozenset()))
    assert [name for name, _, _ in api.calls] == ["spec"]


@pytest.mark.parametrize(("status", "reason"), [(409, "Conflict"), (404, "NotFound")])
def test_a_stream_changed_or_gone_since_it_was_read_is_a_conflict(status: int, reason: str) -> None:
    api = Api()
    api.errors["status"] = api_error(status, reason)
    with pytest.raises(Conflict):
        DeleteRecords(api).write(STREAM, StreamChange({"tags": []}, None, frozenset()))


def test_a_refused_write_is_denied_and_a_failed_one_retryable() -> None:
    api = Api()
    api.errors["status"] = api_error(403, "Forbidden")
    with pytest.raises(Denied):
        DeleteRecords(api).write(STREAM, StreamChange({"tags": []}, None, frozenset()))
    api.errors["status"] = api_error(500)
    with pytest.raises(RecordFailed, match="writing the ImageStream: HTTP 500"):
        DeleteRecords(api).write(STREAM, StreamChange({"tags": []}, None, frozenset()))


def test_a_list_follows_every_page() -> None:
    api = Api()
    api.pages = [
        {"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "next"}},
        {"items": [{"metadata": {"name": "b"}}], "metadata": {}},
    ]
    assert [i["metadata"]["name"] for i in DeleteRecords(api).streams()] == ["a", "b"]
    assert [kwargs.get("_continue") for _, _, kwargs in api.calls] == [None, "next"]
    assert {kwargs["limit"] for _, _, kwargs in api.calls} == {LIST_PAGE_SIZE}


def test_an_image_is_deleted_only_as_it_was_read() -> None:
    api = Api()
    assert DeleteRecords(api).delete_image(IMAGE)
    assert api.calls[0][2]["body"] == {"preconditions": {"uid": "u1", "resourceVersion": "3"}}
    for status, reason in ((409, "Conflict"), (404, "NotFound")):
        api.errors["delete"] = api_error(status, reason)
        assert not DeleteRecords(api).delete_image(IMAGE)  # changed since, or gone: kept
    api.errors["delete"] = api_error(500)
    with pytest.raises(RecordFailed, match="deleting an Image: HTTP 500"):
        DeleteRecords(api).delete_image(IMAGE)


def test_a_mark_comes_off_only_from_the_image_as_read() -> None:
    api = Api()
    DeleteRecords(api).drop_mark(IMAGE)
    patch = api.calls[0][1][4]
    assert patch == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "3"},
        {"op": "remove", "path": "/metadata/annotations/image.alauda.io~1pushed-by-digest-to"},
    ]
