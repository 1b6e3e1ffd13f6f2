"""The pruner's reach into the API: lists of everything it judges, a stream's status write
with its resourceVersion, an Image's delete with its own, the registry Config. Raw JSON
(``kube.jsonapi``), page by page, so a cluster of many pods is never one answer."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, Final

from kubernetes import client

from kube.jsonapi import JsonApi
from quota.names import (
    CONFIGS,
    IMAGE_GROUP,
    IMAGE_VERSION,
    IMAGES,
    IMAGESTREAMS,
    OPERATOR_GROUP,
    OPERATOR_VERSION,
)
from quota.objects import Obj

REQUEST_SECONDS: Final = 60.0
"""One page or one write: a page of ``PAGE_SIZE`` pods is some megabytes."""
PAGE_SIZE: Final = 500
"""Objects per list page: client-go's pager default (``pager.defaultPageSize``)."""
CONFIG_NAME: Final = "cluster"
"""The registry operator's singleton Config."""


class PruneApi(JsonApi):
    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(timeout=REQUEST_SECONDS)
        self._core = client.CoreV1Api(api)
        self._apps = client.AppsV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    def _all(self, func: Callable[..., Any], kind: str) -> Iterator[Obj]:
        token: str | None = None
        while True:
            more: dict[str, Any] = {"_continue": token} if token else {}
            page = self._call(func, limit=PAGE_SIZE, **more)
            for item in page.get("items") or []:
                if isinstance(item, dict):
                    item.setdefault("kind", kind)
                    yield item
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def workloads(self) -> Iterator[Obj]:
        """Every object with a pod spec the pruner honours, each with its ``kind``."""
        listers: list[tuple[Callable[..., Any], str]] = [
            (self._core.list_pod_for_all_namespaces, "Pod"),
            (self._core.list_replication_controller_for_all_namespaces, "ReplicationController"),
            (self._apps.list_replica_set_for_all_namespaces, "ReplicaSet"),
            (self._apps.list_deployment_for_all_namespaces, "Deployment"),
            (self._apps.list_stateful_set_for_all_namespaces, "StatefulSet"),
            (self._apps.list_daemon_set_for_all_namespaces, "DaemonSet"),
            (self._batch.list_job_for_all_namespaces, "Job"),
            (self._batch.list_cron_job_for_all_namespaces, "CronJob"),
        ]
        for func, kind in listers:
            yield from self._all(func, kind)

    def streams(self) -> list[Obj]:
        lister = functools.partial(
            self._custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGESTREAMS
        )
        return list(self._all(lister, "ImageStream"))

    def images(self) -> list[Obj]:
        lister = functools.partial(
            self._custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGES
        )
        return list(self._all(lister, "Image"))

    def stream(self, namespace: str, name: str) -> Obj | None:
        return self._read(
            self._custom.get_namespaced_custom_object,
            IMAGE_GROUP, IMAGE_VERSION, namespace, IMAGESTREAMS, name,
        )  # fmt: skip

    def write_stream_status(self, stream: Obj) -> Obj:
        """The status as ``stream`` has it, written only over the resourceVersion it
        carries (409 Conflict otherwise)."""
        meta = stream["metadata"]
        return self._call(
            self._custom.replace_namespaced_custom_object_status,
            IMAGE_GROUP, IMAGE_VERSION, meta["namespace"], IMAGESTREAMS, meta["name"], stream,
        )  # fmt: skip

    def delete_image(self, name: str, resource_version: str) -> None:
        """Delete the Image only as it was read (409 Conflict if it changed since)."""
        self._call(
            self._custom.delete_cluster_custom_object,
            IMAGE_GROUP, IMAGE_VERSION, IMAGES, name,
            body={"preconditions": {"resourceVersion": resource_version}},
        )  # fmt: skip

    def registry_config(self) -> Obj | None:
        return self._read(
            self._custom.get_cluster_custom_object,
            OPERATOR_GROUP, OPERATOR_VERSION, CONFIGS, CONFIG_NAME,
        )  # fmt: skip

    def patch_registry_config(self, patch: Obj) -> Obj:
        """A JSON merge patch of the Config's spec (``readOnly``)."""
        return self._call(
            self._custom.patch_cluster_custom_object,
            OPERATOR_GROUP, OPERATOR_VERSION, CONFIGS, CONFIG_NAME, patch,
        )  # fmt: skip
