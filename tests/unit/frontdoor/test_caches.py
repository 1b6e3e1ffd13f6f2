"""The front door's caches: a cached stream serves reads exactly as the stream itself."""

from __future__ import annotations

import threading
import time
from typing import Any

from hypothesis import example, given, settings
from kubernetes import client

from frontdoor.caches import (
    CHILD_INDEX,
    STREAM_CURRENT,
    FrontDoorCaches,
    cached_stream_for_reads,
    caught_up,
    front_door_image_keys,
    names_digest,
)
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST
from quota.served import recorded_repository
from tests.unit.serving.cachedobjects import (
    REGISTRY_STREAM,
    SHA,
    FakeInformer,
    cached_copy,
    streams,
)


@settings(max_examples=200, deadline=None)
@given(streams)
@example(REGISTRY_STREAM)
def test_a_cached_stream_serves_the_same_reads_as_the_original(stream: dict[str, Any]) -> None:
    """Each tag's current image and the whole history: what the front door forwards a
    manifest read by, from the cache exactly as from the stream itself."""
    built = FrontDoorCaches(client.ApiClient())
    cached = cached_copy(built.imagestreams, stream)
    built.imagestreams = FakeInformer("imagestreams", {"team-a/x": cached})  # type: ignore[assignment]
    assert built.recorded("team-a", "x") == recorded_repository(stream)
    assert built.recorded("team-a", "y") is None


def test_the_front_doors_caches_keep_each_tags_current_image() -> None:
    stream = {
        "metadata": {"name": "x", "namespace": "team-a"},
        "status": {"tags": [{"tag": "v1", "items": [{"image": SHA}]}]},
    }
    kept = FrontDoorCaches(client.ApiClient()).imagestreams.transform(stream)
    assert kept[STREAM_CURRENT] == (("v1", SHA),)


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _stream(namespace: str, name: str, version: str, *digests: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "resourceVersion": version},
        "status": {
            "tags": [{"tag": f"t{i}", "items": [{"image": d}]} for i, d in enumerate(digests)]
        },
    }


def _image(digest: str, *children: str, pushed_to: str | None = None) -> dict[str, Any]:
    image: dict[str, Any] = {
        "metadata": {"name": digest.replace(":", "-"), "resourceVersion": "1"},
        "dockerImageReference": f"r/ns/app@{digest}",
    }
    if children:
        image["dockerImageManifests"] = [{"digest": c} for c in children]
    if pushed_to:
        image["metadata"]["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: pushed_to}
    return image


def _watched(*objects: dict[str, Any]) -> FrontDoorCaches:
    """Real informers, fed as their watch would feed them."""
    built = FrontDoorCaches(client.ApiClient())
    for obj in objects:
        informer = built.imagestreams if "status" in obj else built.images
        informer._apply({"type": "ADDED", "object": obj})
    return built


def test_the_streams_naming_a_digest_are_found_in_one_pass() -> None:
    built = _watched(
        _stream("a", "x", "1", _digest(1), _digest(2)),
        _stream("b", "y", "1", _digest(2), "md5:other"),
        _stream("c", "z", "1", _digest(3)),
    )
    assert built.streams_naming([_digest(2), _digest(9), "md5:other"]) == {
        _digest(2): [("a", "x"), ("b", "y")],
        _digest(9): [],
        "md5:other": [("b", "y")],
    }


def test_a_digest_spanning_two_packed_digests_is_not_named() -> None:
    """The packed bytes of two neighbours hold every 32-byte window between them: only a
    match at a digest's boundary counts."""
    first, second = "ab" * 32, "cd" * 32
    cached = cached_stream_for_reads(_stream("a", "x", "1", "sha256:" + first, "sha256:" + second))
    # The stream's digests are packed in either order: one of these windows is there.
    for spanning in (first[32:] + second[:32], second[32:] + first[:32]):
        assert not names_digest(cached, "sha256:" + spanning)
    assert names_digest(cached, "sha256:" + second)


def test_an_index_is_found_by_its_children_and_marks_by_repository() -> None:
    built = _watched(
        _image(_digest(1), _digest(2), _digest(3)),
        _image(_digest(2)),
        _image(_digest(4), pushed_to="ns/app"),
        _image(_digest(5), pushed_to="ns/other"),
    )
    assert front_door_image_keys(_image(_digest(1), _digest(2))) == [
        _digest(1),
        CHILD_INDEX + _digest(2),
    ]
    assert built.parents(_digest(2)) == [_digest(1)]
    assert built.parents(_digest(1)) == []
    assert built.marked("ns/app") == [_digest(4)]


def test_resource_versions_compare_as_etcd_revisions() -> None:
    assert caught_up("10", "9") and caught_up("10", "10") and not caught_up("9", "10")
    assert caught_up("x", "x") and not caught_up("y", "x")


def test_a_delete_waits_until_the_cache_holds_its_own_write() -> None:
    """Woken by the watch event itself, long before its deadline."""
    built = _watched(_stream("ns", "app", "5"))
    assert not built.wait_for_stream("ns", "app", "6", timeout=0.01)
    answers: list[bool] = []
    waiter = threading.Thread(
        target=lambda: answers.append(built.wait_for_stream("ns", "app", "6", timeout=60.0))
    )
    waiter.start()
    deadline = time.monotonic() + 10.0
    while not built._stream_seen._waiters:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the delete never started waiting"
        time.sleep(0.001)
    built.imagestreams._apply({"type": "MODIFIED", "object": _stream("ns", "app", "6")})
    waiter.join(timeout=10.0)
    assert answers == [True]
    assert built.wait_for_stream("ns", "app", "5", timeout=0.0)  # newer than asked: caught up
