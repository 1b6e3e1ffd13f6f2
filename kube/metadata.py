"""List and watch objects' metadata only, as client-go's metadata informer does.

For kinds whose contents a process must never hold (Secrets): the API server answers
with ``PartialObjectMetadata``, so no data crosses the wire. (RBAC cannot grant metadata
alone; this bounds what the process has, not what its token may read.)
"""

from __future__ import annotations

from typing import Any, Final

from kubernetes import client

from kube.informer import ListFunc

LIST_ACCEPT: Final = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WATCH_ACCEPT: Final = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"

_QUERY: Final = {
    "label_selector": "labelSelector",
    "field_selector": "fieldSelector",
    "limit": "limit",
    "_continue": "continue",
    "resource_version": "resourceVersion",
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "timeout_seconds": "timeoutSeconds",
    "watch": "watch",
}
"""The informer's keyword arguments and the query parameters they stand for."""


def _query_value(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def metadata_list_func(api: client.ApiClient, path: str) -> ListFunc:
    """A list function for :class:`kube.informer.Informer` over ``path`` (for example
    ``/api/v1/secrets``) that asks for metadata only, in lists and in watch events."""

    def list_metadata(
        *, _preload_content: bool = False, _request_timeout: Any = None, **kwargs: Any
    ) -> Any:
        unknown = set(kwargs) - set(_QUERY)
        if unknown:
            raise TypeError(f"unsupported list arguments: {sorted(unknown)}")
        query = [(_QUERY[k], _query_value(v)) for k, v in kwargs.items() if v is not None]
        accept = WATCH_ACCEPT if kwargs.get("watch") else LIST_ACCEPT
        return api.call_api(
            path,
            "GET",
            query_params=query,
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=_request_timeout,
        )

    return list_metadata
