"""What the push rules' caches keep: objects cached smaller but judged by the rules exactly as
the originals."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from kubernetes import client

from quota.imagerefs import images_by_digest
from quota.limits import effective_limits
from quota.measure import stream_usage
from quota.storage import namespace_blobs
from serving.caches import PushCaches
from tests.unit.serving.cachedobjects import (
    REGISTRY_STREAM,
    SHA,
    FakeInformer,
    cached_copy,
    limit_ranges,
    streams,
)
from webhook.caches import WebhookCaches


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


def _stored(informer: Any, *objects: dict[str, Any]) -> None:
    """``objects`` as the informer's watch would bring them (transformed and indexed)."""
    for obj in objects:
        informer._apply({"type": "ADDED", "object": copy.deepcopy(obj)})


def test_the_blobs_a_namespace_holds_are_read_from_its_own_images_as_from_whole_objects() -> None:
    m = {n: f"sha256:{n * 64}" for n in "abcde"}
    b = {n: f"sha256:{n * 64}" for n in "uvwxyz"}

    def image(digest: str, **body: Any) -> dict[str, Any]:
        name = digest.replace(":", "-")
        meta: dict[str, Any] = {"name": name, "resourceVersion": "1"}
        pushed = body.pop("pushed_to", None)
        if pushed:
            meta["annotations"] = {"image.alauda.io/pushed-by-digest-to": pushed}
        return {"metadata": meta, "dockerImageReference": f"r/x/y@{digest}", **body}

    def layers(*blobs: tuple[str, int]) -> list[dict[str, Any]]:
        return [{"name": d, "size": size, "mediaType": "m"} for d, size in blobs]

    images = [
        image(m["a"], dockerImageLayers=layers((b["u"], 100), (b["v"], 200))),
        image(
            m["b"],
            dockerImageLayers=layers((b["u"], 100)),
            dockerImageConfig={"digest": b["w"], "size": 5},
        ),
        image(m["c"], dockerImageManifests=[{"digest": m["a"]}, {"digest": m["b"]}]),
        image(m["d"], dockerImageLayers=layers((b["x"], 7)), pushed_to="team-a/app"),
        image(m["e"], dockerImageLayers=layers((b["y"], 9)), pushed_to="team-b/app"),
    ]
    streams = [
        {
            "metadata": {"name": "app", "namespace": ns, "resourceVersion": "1"},
            "status": {"tags": [{"tag": "v1", "items": [{"image": digest}]}]},
        }
        for ns, digest in (("team-a", m["c"]), ("team-b", m["b"]))
    ]
    for built in (PushCaches(client.ApiClient()), WebhookCaches(client.ApiClient())):
        _stored(built.images, *images)
        _stored(built.imagestreams, *streams)
        for ns in ("team-a", "team-b", "team-c"):
            expected = namespace_blobs(ns, streams, images_by_digest(images))
            assert built.namespace_blobs(ns) == expected
        assert built.namespace_blobs("team-a") == {b["u"]: 100, b["v"]: 200, b["w"]: 5, b["x"]: 7}
