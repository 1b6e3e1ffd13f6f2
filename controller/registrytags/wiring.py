"""Wiring of the registry tag reconciler: repositories are the keys.

Every change to an ImageStream (a tag removed, the stream deleted) queues its repository;
every resync queues each repository of the registry's catalog too, so tags whose stream
went while the controller was down, or that reached the registry some other way, are
found without an event. Its rights are its own and few: get, list and watch on
ImageStreams, nothing else of the API; the registry it reaches is the upstream one alone
(the front door component's NetworkPolicy lets the controller in).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from typing import Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.registrytags.reconciler import RegistryTagsReconciler, Requeue
from controller.registrytags.registry import RegistryUnavailable, UpstreamRegistry
from kube.images import IMAGE_GROUP, IMAGE_VERSION
from kube.informer import Informer, wait_all_synced
from kube.ratelimit import RateLimiter
from kube.runner import Runner
from kube.settings import Settings
from kube.transforms import Keep, projection
from kube.workqueue import WorkQueue
from quota.objects import Obj, object_key

log = logging.getLogger(__name__)

READ_TIMEOUT: Final = 10
"""Seconds per live ImageStream read; a slow read is retried by the work queue."""
STREAM_TAGS_KEEP: Final[dict[str, Keep]] = {
    "spec": {"tags": [{"name": True}]},
    "status": {"tags": [{"tag": True}]},
}
"""What the reconciler reads of a stream: its tag names (``quota.served.stale_tags``)."""
RESYNC_CAP_SECONDS: Final = 60
"""The longest wait between catalog walks, as the quota usage loop caps its resync: a
stop is noticed within it."""


class LiveImageStreams:
    """One ImageStream as the API server has it now (raw JSON), before anything is deleted."""

    def __init__(self, api: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)

    def stream(self, namespace: str, name: str) -> Obj | None:
        try:
            response = self._custom.get_namespaced_custom_object(
                IMAGE_GROUP,
                IMAGE_VERSION,
                namespace,
                "imagestreams",
                name,
                _preload_content=False,
                _request_timeout=READ_TIMEOUT,
            )
        except ApiException as err:
            if err.status == 404 and object_not_found(err.body, name):
                return None
            if err.status == 404:
                # The resource itself is not served (its CRD deleted, the aggregated Image
                # API down): that says nothing about the stream, so nothing may be deleted.
                raise Requeue(f"imagestreams.{IMAGE_GROUP} is not served: HTTP 404") from None
            raise
        found = json.loads(response.data)
        if not isinstance(found, dict):
            raise Requeue(f"ImageStream {namespace}/{name}: the answer is not an object")
        return found


def object_not_found(body: object, name: str) -> bool:
    """Whether a 404's body says that the ImageStream ``name`` does not exist, not that
    the resource is not served. Both are a ``Status`` with reason ``NotFound``, but only
    the resource's storage names the object (``details.name``, ``group`` and ``kind``
    ``imagestreams``: apimachinery's ``NewNotFound``); a resource the API server does not
    serve gets its not-found handler's Status with empty details, or plain text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return False
    if not isinstance(status, dict) or status.get("reason") != "NotFound":
        return False
    details = status.get("details")
    return (
        isinstance(details, dict)
        and details.get("name") == name
        and details.get("group") == IMAGE_GROUP
        and details.get("kind") == "imagestreams"
    )


class RegistryTagsWiring:
    """An informer on ImageStreams and the registry's catalog feed repository keys."""

    def __init__(
        self,
        api: client.ApiClient,
        settings: Settings,
        limiter: RateLimiter,
        registry: UpstreamRegistry,
    ) -> None:
        custom = client.CustomObjectsApi(api)
        self.imagestreams = Informer(
            "imagestreams(tags)",
            functools.partial(
                custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, "imagestreams"
            ),
            missing_ok=True,
            transform=projection(STREAM_TAGS_KEEP),
        )
        self.registry = registry
        self.queue = WorkQueue(name="registry-tags")
        self.reconciler = RegistryTagsReconciler(
            registry, self.imagestreams, LiveImageStreams(api), acquire=limiter.acquire
        )
        # One worker: deletes are few, and one connection keeps the registry's load flat.
        self.runner = Runner(
            "registry-tags", self.queue, self.reconciler.reconcile, workers=1, retryable=(Requeue,)
        )
        self._resync_seconds = settings.resync_seconds
        self.imagestreams.add_handler(self._enqueue)

    @property
    def informers(self) -> list[Informer]:
        return [self.imagestreams]

    def _enqueue(self, kind: str, obj: Obj, old: Obj | None) -> None:
        self.queue.add(object_key(obj))

    def _enqueue_catalog(self) -> None:
        """Every repository the registry has; a registry out of reach is tried next time."""
        try:
            for repository in self.registry.repositories():
                self.queue.add(repository)
        except RegistryUnavailable as err:
            log.warning("listing the registry's catalog failed: %s", err)

    def start_informers(self, stop: threading.Event) -> None:
        for informer in self.informers:
            informer.start(stop)

    def run(self, stop: threading.Event) -> None:
        if not wait_all_synced(self.informers, stop):
            return
        log.info("registry tags controller: caches synced")
        self.runner.start(stop)
        self._enqueue_catalog()
        while not stop.wait(min(self._resync_seconds, RESYNC_CAP_SECONDS)):
            self._enqueue_catalog()
        self.runner.join()
