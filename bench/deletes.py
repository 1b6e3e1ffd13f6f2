"""``python -m bench.deletes``: how long a front door delete takes among many unrelated
Images, now that it starts from the caches, next to the live lists it used to make.

One local stack (control plane and webhook, whose admission judges the stream writes as
in a cluster) holds ``--images`` unrelated Images and streams naming them. Each round
records one tagged image and deletes its tag with the front door's own delete
(``frontdoor.deletes.ManifestDeletes``, its caches synced, the registry a no-op), then
times what the delete did before on the same data: listing every ImageStream and every
Image live (its other steps are the same). The blob check is timed the same two ways.
Not part of ``make test``: it starts its own stack (``make delete-bench``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Final

from kubernetes import client, config

from bench import samples
from bench.report import alternate, progress
from frontdoor.caches import FrontDoorCaches
from frontdoor.deleterecords import DeleteRecords
from frontdoor.deletes import ManifestDeletes
from frontdoor.records import ImageRecords
from frontdoor.upstream import UpstreamResponse
from localcluster.cluster import ControlPlane
from localcluster.stack import Stack
from localcluster.waiting import wait_for
from quota.names import IMAGE_GROUP, IMAGE_VERSION, IMAGES, IMAGESTREAMS
from quota.pushrecords import image_object_name

IMAGES_DEFAULT: Final = 2000
"""Issue 20's figure: the old delete took 1.6-1.9 s with 2,000 Images."""
STREAMS: Final = 100
"""Unrelated streams, each naming ``IMAGES / STREAMS`` of the unrelated Images."""
ROUNDS: Final = 5
"""Deletes timed each way: a handful shows the spread."""
FILL_THREADS: Final = 8
"""Concurrent creates while filling: the API server's loopback keeps up with this many."""
LAYERS: Final = 3
"""Layers per Image, as ``bench.scale`` records them."""
NAMESPACE: Final = "bench-deletes"
SYNC_SECONDS: Final = 120.0
"""The caches' first list of a few thousand objects takes seconds; this bounds a hang."""


class _NoRegistry:
    """The registry's answers: a delete's registry steps are not what is measured."""

    def request(self, method: str, path: str, headers: Mapping[str, str]) -> UpstreamResponse:
        return UpstreamResponse(202, [], iter([]), 0)


def _api(stack: Stack) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(str(stack.kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = FILL_THREADS
    return client.ApiClient(configuration)


def _parallel(job: Callable[[int], object], count: int) -> None:
    with concurrent.futures.ThreadPoolExecutor(FILL_THREADS) as pool:
        for future in [pool.submit(job, i) for i in range(count)]:
            future.result()


def fill(custom: client.CustomObjectsApi, images: int) -> None:
    """``images`` unrelated Images and ``STREAMS`` streams naming them."""

    def image(i: int) -> None:
        body = samples.image(NAMESPACE, i, layers=LAYERS)
        custom.create_cluster_custom_object(
            IMAGE_GROUP, IMAGE_VERSION, IMAGES, body, _preload_content=False
        )

    per_stream = max(1, images // STREAMS)

    def stream(i: int) -> None:
        sample = samples.imagestream(
            NAMESPACE, f"other-{i:03d}", tags=1, history=per_stream, first_image=i * per_stream
        )
        created = custom.create_namespaced_custom_object(
            IMAGE_GROUP, IMAGE_VERSION, NAMESPACE, IMAGESTREAMS, samples.created(sample)
        )
        created["status"] = sample["status"]
        custom.replace_namespaced_custom_object_status(
            IMAGE_GROUP,
            IMAGE_VERSION,
            NAMESPACE,
            IMAGESTREAMS,
            created["metadata"]["name"],
            created,
        )

    progress(f"creating {images:,} Images")
    _parallel(image, images)
    progress(f"creating {STREAMS} ImageStreams naming them")
    _parallel(stream, STREAMS)


class Rounds:
    """Each round records one tagged image in ``app``; ``new`` deletes it through the
    front door's delete, ``old`` makes the live lists the delete made before."""

    def __init__(self, custom: client.CustomObjectsApi, deletes: ManifestDeletes) -> None:
        self._custom = custom
        self._deletes = deletes
        self._records = DeleteRecords(custom)
        self._made = 0

    def _record(self) -> str:
        self._made += 1
        digest = samples.digest("deleted", self._made)
        body = samples.image(NAMESPACE, 10_000_000 + self._made, layers=LAYERS)
        body["metadata"]["name"] = image_object_name(digest)
        body["dockerImageReference"] = f"{samples.REGISTRY}/{NAMESPACE}/app@{digest}"
        self._custom.create_cluster_custom_object(IMAGE_GROUP, IMAGE_VERSION, IMAGES, body)
        stream = self._custom.get_namespaced_custom_object(
            IMAGE_GROUP, IMAGE_VERSION, NAMESPACE, IMAGESTREAMS, "app"
        )
        stream["status"] = {
            "tags": [{"tag": "v1", "items": [samples.history_item(NAMESPACE, "app", 0)]}]
        }
        stream["status"]["tags"][0]["items"][0]["image"] = digest
        self._custom.replace_namespaced_custom_object_status(
            IMAGE_GROUP, IMAGE_VERSION, NAMESPACE, IMAGESTREAMS, "app", stream
        )
        return digest

    def new(self) -> float:
        digest = self._record()
        started = time.perf_counter()
        self._deletes.delete_manifest(NAMESPACE, "app", "v1")
        took = time.perf_counter() - started
        if self._records.image(digest) is not None:
            raise RuntimeError(f"the delete kept {digest}: nothing else references it")
        return took

    def old(self) -> float:
        started = time.perf_counter()
        self._records.streams()
        list(self._records._list(IMAGES))
        return time.perf_counter() - started


def _report(label: str, seconds: list[float]) -> None:
    print(
        f"{label}: median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s "
        f"({', '.join(f'{s:.3f}' for s in seconds)})"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deletes", description=__doc__)
    parser.add_argument("--images", type=int, default=IMAGES_DEFAULT, help="unrelated Images")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="deletes timed each way")
    args = parser.parse_args(argv)
    progress("starting the local stack (control plane, webhook)")
    stack = Stack(ControlPlane(), with_controller=False)
    stack.start()
    try:
        with _api(stack) as api:
            core = client.CoreV1Api(api)
            custom = client.CustomObjectsApi(api)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            fill(custom, args.images)
            custom.create_namespaced_custom_object(
                IMAGE_GROUP,
                IMAGE_VERSION,
                NAMESPACE,
                IMAGESTREAMS,
                samples.created(samples.imagestream(NAMESPACE, "app", tags=0, history=0)),
            )
            caches = FrontDoorCaches(api)
            caches.start()
            wait_for(lambda: caches.not_ready() is None, timeout=SYNC_SECONDS, what="the caches")
            deletes = ManifestDeletes(
                ImageRecords(custom), DeleteRecords(custom), _NoRegistry(), caches
            )
            rounds = Rounds(custom, deletes)
            new, old = alternate(args.rounds, rounds.new, rounds.old)
            blob = samples.layer_digest(1, 0)
            new_blob, old_blob = alternate(
                args.rounds,
                lambda: _timed(lambda: deletes.check_blob(NAMESPACE, "other-000", blob)),
                lambda: _timed(lambda: list(DeleteRecords(custom)._list(IMAGES))),
            )
            caches.stop()
    finally:
        stack.stop()
    print(f"{args.images:,} unrelated Images, {STREAMS} streams naming them")
    _report("tag delete, from the caches (whole delete)", new)
    _report("tag delete before: its live lists of every stream and Image", old)
    _report("blob check, from the caches", new_blob)
    _report("blob check before: its live list of every Image", old_blob)
    return 0


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    try:
        action()
    except Exception as err:  # a refused blob is an answer too: the time is what counts
        if type(err).__name__ != "RegistryError":
            raise
    return time.perf_counter() - started


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
