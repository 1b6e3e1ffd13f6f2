"""What the push rules' caches keep: objects cached smaller but judged by the rules exactly as
the originals."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from kubernetes import client

from quota.limits import effective_limits
from quota.measure import stream_usage
from serving.caches import PushCaches
from tests.unit.serving.cachedobjects import (
    REGISTRY_STREAM,
    SHA,
    FakeInformer,
    cached_copy,
    limit_ranges,
    streams,
)


@settings(max_examples=200, deadline=None)
@given(streams)
@example(REGISTRY_STREAM)
def test_a_cached_stream_counts_the_same_tags_and_images(stream: dict[str, Any]) -> None:
    built = PushCaches(client.ApiClient())
    cached = cached_copy(built.imagestreams, stream)
    built.imagestreams = FakeInformer("imagestreams", {"team-a/x": cached})  # type: ignore[assignment]
    assert built.imagestream_usage("team-a", "x") == stream_usage(stream)
    assert built.imagestream_usage("team-a", "y") is None


@settings(max_examples=200, deadline=None)
@given(st.lists(limit_ranges, max_size=3))
def test_cached_limit_ranges_give_the_same_limits(ranges: list[dict[str, Any]]) -> None:
    informer = PushCaches(client.ApiClient()).limit_ranges
    try:
        expected: Any = effective_limits(ranges)
    except Exception as err:  # a broken range fails alike, cached or not
        expected = type(err)
    try:
        got: Any = effective_limits([cached_copy(informer, r) for r in ranges])
    except Exception as err:
        got = type(err)
    assert got == expected


def test_a_cached_stream_gives_back_every_digest_as_it_was_spelled() -> None:
    """sha256 digests are packed into bytes; anything else (other algorithms, upper case,
    no algorithm) is kept as written, so no digest is lost or respelled."""
    spelled = [SHA, "sha256:" + "cd" * 32, SHA.upper(), "sha256:" + "AB" * 32, "ab" * 32, "x"]
    stream = {
        "metadata": {"name": "x", "namespace": "team-a"},
        "status": {"tags": [{"tag": "v1", "items": [{"image": d} for d in spelled]}]},
    }
    built = PushCaches(client.ApiClient())
    cached = built.imagestreams.transform(stream)
    assert len(cached["sha256"]) == 2 * 32
    built.imagestreams = FakeInformer("imagestreams", {"team-a/x": cached})  # type: ignore[assignment]
    usage = built.imagestream_usage("team-a", "x")
    assert usage is not None and usage.images == frozenset(spelled)
