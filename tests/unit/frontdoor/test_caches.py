"""The front door's caches: a cached stream serves reads exactly as the stream itself."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from kubernetes import client

from frontdoor.caches import STREAM_CURRENT, FrontDoorCaches
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
