"""What the quota usage wiring caches: quotas whole but for managedFields, ImageStreams as
metadata only (the reconciler only counts them)."""

from __future__ import annotations

import json
import threading
from typing import Any

from kubernetes import client

from controller.quotausage.wiring import QuotaUsageWiring
from kube.metadata import LIST_ACCEPT
from kube.ratelimit import RateLimiter
from localcluster.waiting import wait_for

MANAGED_FIELDS = [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}]


class Response:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.data = json.dumps(payload).encode()

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return iter(())

    def read_chunked(self, *args: Any, **kwargs: Any) -> Any:
        return iter(())

    def close(self) -> None: ...

    def release_conn(self) -> None: ...


class RecordingApi(client.ApiClient):  # type: ignore[misc]
    """Answers every list with one object whose metadata has managedFields."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, str]]] = []

    def call_api(self, path: str, method: str, *args: Any, **kwargs: Any) -> Response:
        headers = dict(kwargs.get("header_params") or {})
        self.calls.append((path, headers))
        item = {
            "metadata": {
                "name": "s",
                "namespace": "team-a",
                "resourceVersion": "3",
                "managedFields": MANAGED_FIELDS,
            },
            "spec": {"tags": [{"name": "v1"}]},
        }
        return Response({"items": [item], "metadata": {"resourceVersion": "3"}})


def test_imagestreams_are_listed_and_cached_as_metadata_only() -> None:
    api = RecordingApi()
    wiring = QuotaUsageWiring(api, RateLimiter(1, 1))
    stop = threading.Event()
    wiring.imagestreams.start(stop)
    try:
        wait_for(wiring.imagestreams.has_synced, timeout=10, what="the ImageStream list")
    finally:
        stop.set()
    path, headers = api.calls[0]
    assert path == "/apis/image.alauda.io/v1/imagestreams"
    assert headers["Accept"] == LIST_ACCEPT
    cached = wiring.imagestreams.list("team-a")
    assert cached == [{"metadata": {"name": "s", "namespace": "team-a", "resourceVersion": "3"}}]


def test_quotas_lose_only_their_managed_fields() -> None:
    wiring = QuotaUsageWiring(client.ApiClient(), RateLimiter(1, 1))
    meta = {"name": "q", "namespace": "a", "labels": {"x": "y"}, "managedFields": MANAGED_FIELDS}
    quota = {"metadata": meta, "spec": {"hard": {"a": "1"}}, "status": {"used": {"a": "0"}}}
    cached = wiring.quotas.transform(quota)
    assert cached == {**quota, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
