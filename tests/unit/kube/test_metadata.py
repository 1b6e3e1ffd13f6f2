"""Metadata-only lists and watches: the Accept header and the query, nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from kube.metadata import LIST_ACCEPT, WATCH_ACCEPT, metadata_list_func


class RecordingApi:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def call_api(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((args, kwargs))
        return "response"


def test_a_list_asks_for_partial_object_metadata_lists() -> None:
    api = RecordingApi()
    list_secrets = metadata_list_func(api, "/api/v1/secrets")

    result = list_secrets(
        _preload_content=False,
        _request_timeout=60,
        field_selector="type=kubernetes.io/dockerconfigjson",
        limit=500,
        _continue="token",
    )

    assert result == "response"
    (args, kwargs) = api.calls[0]
    assert args == ("/api/v1/secrets", "GET")
    assert kwargs["header_params"] == {"Accept": LIST_ACCEPT}
    assert kwargs["query_params"] == [
        ("fieldSelector", "type=kubernetes.io/dockerconfigjson"),
        ("limit", 500),
        ("continue", "token"),
    ]
    assert kwargs["_preload_content"] is False
    assert kwargs["_request_timeout"] == 60
    assert kwargs["auth_settings"] == ["BearerToken"]
    assert LIST_ACCEPT == "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


def test_a_watch_asks_for_partial_object_metadata_events() -> None:
    api = RecordingApi()
    list_secrets = metadata_list_func(api, "/api/v1/secrets")

    list_secrets(
        watch=True,
        resource_version="42",
        allow_watch_bookmarks=True,
        timeout_seconds=300,
        _request_timeout=(10, 330),
    )

    (_, kwargs) = api.calls[0]
    assert kwargs["header_params"] == {"Accept": WATCH_ACCEPT}
    assert kwargs["query_params"] == [
        ("watch", "true"),
        ("resourceVersion", "42"),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", 300),
    ]
    assert WATCH_ACCEPT == "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


def test_unknown_arguments_are_refused_not_dropped() -> None:
    list_secrets = metadata_list_func(RecordingApi(), "/x")
    with pytest.raises(TypeError, match="pretty"):
        list_secrets(pretty=True)


def test_unset_arguments_are_left_out() -> None:
    api = RecordingApi()
    metadata_list_func(api, "/x")(label_selector=None, watch=False)
    assert api.calls[0][1]["query_params"] == [("watch", "false")]
    assert api.calls[0][1]["header_params"] == {"Accept": LIST_ACCEPT}
