"""What the quota usage wiring caches and queues: quotas whole but for managedFields,
ImageStreams and Images with only what the recounts read."""

from __future__ import annotations

import pytest
from kubernetes import client

from bench import samples
from controller.quotausage.wiring import QuotaUsageWiring
from kube.informer import Informer
from kube.ratelimit import RateLimiter
from quota.imagerefs import images_by_digest
from quota.objects import Obj, object_key
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST
from quota.storage import namespace_blobs, storage_used
from serving.caches import stream_digests

STORAGE = "alauda.io/image-storage"
MANAGED_FIELDS = [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}]


def test_imagestreams_are_cached_with_their_history_digests_packed() -> None:
    wiring = QuotaUsageWiring(client.ApiClient(), RateLimiter(1, 1))
    meta = {"name": "s", "namespace": "a", "resourceVersion": "3", "managedFields": MANAGED_FIELDS}
    digest = samples.digest(1)
    item = {"image": digest, "dockerImageReference": f"r@{digest}", "created": "now"}
    stream = {
        "metadata": meta,
        "spec": {"tags": [{"name": "v1"}]},
        "status": {"tags": [{"tag": "v1", "items": [item]}], "dockerImageRepository": "r"},
    }
    cached = wiring.imagestreams.transform(stream)
    assert cached["metadata"] == {"name": "s", "namespace": "a", "resourceVersion": "3"}
    assert "status" not in cached and "spec" not in cached
    assert stream_digests(cached) == [digest]


def _cache(informer: Informer, obj: Obj) -> None:
    """``obj`` into ``informer`` as a watch event would put it (transformed, indexed)."""
    cached = informer.transform(obj)
    informer._store[object_key(cached)] = cached
    informer._index_add(object_key(cached), cached)


def test_a_storage_recount_reads_its_namespaces_images_only_and_counts_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # At 100,000 Images, reading every Image for each namespace's recount (2,000 of them
    # at start-up) cost minutes of CPU; the index finds the namespace's own.
    wiring = QuotaUsageWiring(client.ApiClient(), RateLimiter(1, 1))
    streams = [
        samples.imagestream(ns, "app", tags=2, history=2, first_image=first)
        for ns, first in (("a", 0), ("b", 10))
    ]
    images = [samples.image("a", n, layers=2) for n in (*range(4), *range(10, 14), 20, 21)]
    images[-2]["metadata"]["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: "a/app"}
    images[-1]["metadata"]["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: "b/app"}
    for stream in streams:
        _cache(wiring.imagestreams, stream)
    for image in images:
        _cache(wiring.images, image)

    def every_image(namespace: str | None = None) -> list[Obj]:
        raise AssertionError("a recount listed every cached Image")

    monkeypatch.setattr(wiring.images, "list", every_image)
    for namespace in ("a", "b"):
        expected = namespace_blobs(namespace, streams, images_by_digest(images))
        assert wiring.reconciler._recount(namespace, STORAGE) == storage_used(expected)
        assert wiring.namespace_blobs(namespace) == expected
        assert len(expected) == 5 * 3  # 4 in its history, 1 pushed: 2 layers, 1 config each


def test_images_are_cached_with_what_the_storage_count_reads() -> None:
    wiring = QuotaUsageWiring(client.ApiClient(), RateLimiter(1, 1))
    pushed = {"image.alauda.io/pushed-by-digest-to": "a/app"}
    image = {
        "metadata": {"name": "sha256-1", "annotations": {**pushed, "other": "x"}},
        "dockerImageReference": "r@sha256:1",
        "dockerImageMetadata": {"size": 30, "Config": {"Env": ["A=1"]}},
        "dockerImageConfig": {"digest": "sha256:c", "size": 10},
        "dockerImageLayers": [{"name": "sha256:l", "size": 20, "mediaType": "m"}],
        "dockerImageManifests": [{"digest": "sha256:2", "mediaType": "m", "manifestSize": 5}],
    }
    assert wiring.images.transform(image) == {
        "metadata": {"name": "sha256-1", "annotations": pushed},
        "dockerImageReference": "r@sha256:1",
        "dockerImageConfig": {"digest": "sha256:c", "size": 10},
        "dockerImageLayers": [{"name": "sha256:l", "size": 20}],
        "dockerImageManifests": [{"digest": "sha256:2"}],
    }


def test_an_image_change_queues_only_namespaces_with_a_storage_quota() -> None:
    wiring = QuotaUsageWiring(client.ApiClient(), RateLimiter(1, 1))
    wiring.images._synced.set()
    for namespace, hard in (("a", STORAGE), ("b", "alauda.io/imagestreams")):
        quota = {"metadata": {"name": "q", "namespace": namespace}, "spec": {"hard": {hard: "1"}}}
        wiring.quotas._store[f"{namespace}/q"] = quota
    wiring._enqueue_storage("ADDED", {"metadata": {"name": "sha256-1"}}, None)
    assert len(wiring.queue) == 1
    assert wiring.queue.get(timeout=1) == "a"


def test_quotas_lose_only_their_managed_fields() -> None:
    wiring = QuotaUsageWiring(client.ApiClient(), RateLimiter(1, 1))
    meta = {"name": "q", "namespace": "a", "labels": {"x": "y"}, "managedFields": MANAGED_FIELDS}
    quota = {"metadata": meta, "spec": {"hard": {"a": "1"}}, "status": {"used": {"a": "0"}}}
    cached = wiring.quotas.transform(quota)
    assert cached == {**quota, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def test_images_of_the_first_list_queue_nothing_as_run_queues_every_namespace_once_synced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # At 100,000 Images and 2,000 storage quotas, walking every quota for every listed
    # Image held the Images cache unsynced for minutes (issue 21); ``run`` queues every
    # namespace once all caches have synced, so the first list's events need not.
    wiring = QuotaUsageWiring(client.ApiClient(), RateLimiter(1, 1))
    quota = {"metadata": {"name": "q", "namespace": "a"}, "spec": {"hard": {STORAGE: "1"}}}
    wiring.quotas._store["a/q"] = quota
    walks: list[str | None] = []
    listed = wiring.quotas.list

    def counted(namespace: str | None = None) -> list[Obj]:
        walks.append(namespace)
        return listed(namespace)

    monkeypatch.setattr(wiring.quotas, "list", counted)
    wiring._enqueue_storage("ADDED", {"metadata": {"name": "sha256-1"}}, None)
    assert (len(wiring.queue), walks) == (0, [])
    wiring.images._synced.set()  # later changes (a push, a prune) queue as before
    wiring._enqueue_storage("ADDED", {"metadata": {"name": "sha256-2"}}, None)
    assert wiring.queue.get(timeout=1) == "a"
