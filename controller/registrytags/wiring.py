"""Wiring of the registry tag reconciler: repositories are the keys.

Every change to an ImageStream (a tag removed, the stream deleted) queues its repository:
the common case. The registry's catalog is walked too, at start and then every
``CATALOG_WALK_SECONDS`` (not every resync), so tags whose stream went while the
controller was down, or that reached the registry some other way, are found without an
event; the walk queues its repositories at ``CATALOG_QPS``, so it lists tags at that rate
at most, and the events' repositories never wait behind a whole catalog in the queue.
Its rights are its own and few: get, list and watch on ImageStreams, nothing else of the
API; the registry it reaches is the upstream one alone (the front door component's
NetworkPolicy lets the controller in).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.registrytags.reconciler import RegistryTagsReconciler
from controller.registrytags.registry import RegistryUnavailable, UpstreamRegistry
from kube import apierrors
from kube.informer import Informer, wait_all_synced
from kube.jsonapi import NotAnObject, call_json
from kube.ratelimit import RateLimiter
from kube.requeue import Requeue
from kube.runner import Runner
from kube.transforms import Keep, projection
from kube.workqueue import WorkQueue
from quota.names import IMAGE_GROUP, IMAGE_VERSION, IMAGESTREAMS
from quota.objects import Obj, object_key

log = logging.getLogger(__name__)

READ_TIMEOUT: Final = 10
"""Seconds per live ImageStream read; a slow read is retried by the work queue."""
STREAM_TAGS_KEEP: Final[dict[str, Keep]] = {
    "spec": {"tags": [{"name": True}]},
    "status": {"tags": [{"tag": True}]},
}
"""What the reconciler reads of a stream: its tag names (``quota.served.stale_tags``)."""
CATALOG_WALK_SECONDS: Final = 1800.0
"""Between catalog walks. Events drive the common case; a walk only finds what they missed
(tags left while the controller was down or pushed around the front door), which waits
for the registry's garbage collection anyway. Half an hour, so that a walk of 10,000
repositories at ``CATALOG_QPS`` (about 17 minutes) ends before the next begins."""
CATALOG_QPS: Final = 10.0
CATALOG_BURST: Final = 10
"""Repositories a walk queues per second (each costs the registry one tag list, one page
for most): client-go's default QPS/burst for an API client (5/10), doubled, as a tag
list reads one directory of the registry's storage."""


class LiveImageStreams:
    """One ImageStream as the API server has it now (raw JSON), before anything is deleted."""

    def __init__(self, api: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)

    def stream(self, namespace: str, name: str) -> Obj | None:
        try:
            return call_json(
                self._custom.get_namespaced_custom_object,
                IMAGE_GROUP,
                IMAGE_VERSION,
                namespace,
                IMAGESTREAMS,
                name,
                timeout=READ_TIMEOUT,
            )
        except ApiException as err:
            if apierrors.names_object(err, name, IMAGESTREAMS, group=IMAGE_GROUP):
                return None
            if apierrors.is_not_found(err):
                # The resource itself is not served (its CRD deleted, the aggregated Image
                # API down): that says nothing about the stream, so nothing may be deleted.
                raise Requeue(f"{IMAGESTREAMS}.{IMAGE_GROUP} is not served: HTTP 404") from None
            raise
        except NotAnObject:
            raise Requeue(f"ImageStream {namespace}/{name}: the answer is not an object") from None


class RegistryTagsWiring:
    """An informer on ImageStreams and the registry's catalog feed repository keys."""

    def __init__(
        self,
        api: client.ApiClient,
        limiter: RateLimiter,
        registry: UpstreamRegistry,
    ) -> None:
        custom = client.CustomObjectsApi(api)
        self.imagestreams = Informer(
            "imagestreams(tags)",
            functools.partial(
                custom.list_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGESTREAMS
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
        self.runner = Runner("registry-tags", self.queue, self.reconciler.reconcile, workers=1)
        self._stop = threading.Event()
        """``run``'s stop: a walk's pacing waits on it, so a stop ends a walk at once."""
        self.walk_limiter = RateLimiter(CATALOG_QPS, CATALOG_BURST, sleep=self._pause)
        self.imagestreams.add_handler(self._enqueue)

    @property
    def informers(self) -> list[Informer]:
        return [self.imagestreams]

    def _enqueue(self, kind: str, obj: Obj, old: Obj | None) -> None:
        self.queue.add(object_key(obj))

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _enqueue_catalog(self) -> None:
        """Every repository the registry has, at ``CATALOG_QPS``; a registry out of reach
        is tried at the next walk."""
        try:
            for repository in self.registry.repositories():
                self.walk_limiter.acquire()
                if self._stop.is_set():
                    return
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
        self._stop = stop
        self.runner.start(stop)
        self._enqueue_catalog()
        while not stop.wait(CATALOG_WALK_SECONDS):
            self._enqueue_catalog()
        self.runner.join()
