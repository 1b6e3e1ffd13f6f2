"""Packed Images: a fraction of the projected dict's memory, read exactly as it; anything
that would not read back the same stays a dict."""

from __future__ import annotations

import copy
import gc
import tracemalloc
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench import scale
from quota.imagerefs import image_blobs, image_digest
from quota.measure import recorded_image_size
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST
from quota.served import recorded_image
from serving.caches import cached_image_blobs, project_image_blobs
from serving.compactimages import CompactImage, pack
from tests.unit.serving.cachedobjects import SHA, json_any, maybe
from webhook.caches import IMAGE_SIZE, cached_image

OTHER = "sha256:" + "cd" * 32
blob_digests = st.sampled_from([SHA, OTHER, SHA.upper(), "sha512:" + "ab" * 32, "x", ""])
sizes = st.one_of(st.integers(0, 2**63 - 1), st.sampled_from([-1, 2**63, True, 1.5, "7"]))
blob = st.fixed_dictionaries(
    {}, optional={"digest": maybe(blob_digests), "name": maybe(blob_digests), "size": sizes}
)
images = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"name": maybe(st.sampled_from(["img-1", "sha256-" + "ab" * 32, SHA]))},
            optional={
                "resourceVersion": maybe(st.sampled_from(["1", "42"])),
                "namespace": st.just("team-a"),
                "deletionTimestamp": st.just("2026-12-08T00:00:00Z"),
                "uid": json_any,
                "annotations": maybe(
                    st.dictionaries(
                        st.sampled_from([ANNOTATION_PUSHED_BY_DIGEST, "other"]),
                        maybe(st.sampled_from(["team-a/app", ""])),
                        max_size=2,
                    )
                ),
            },
        )
    },
    optional={
        "dockerImageReference": maybe(
            st.sampled_from([f"r.example/team-a/app@{SHA}", f"r@{OTHER}", "r:v1", f"@{SHA}"])
        ),
        "dockerImageConfig": maybe(blob),
        "dockerImageLayers": maybe(st.lists(maybe(blob), max_size=4)),
        "dockerImageManifests": maybe(st.lists(maybe(blob), max_size=3)),
        "dockerImageMetadata": json_any,
    },
)
REGISTRY_IMAGE = scale.image(7)
INDEX = {
    "metadata": {"name": "idx", "resourceVersion": "9"},
    "dockerImageReference": f"r.example/team-a/app@{SHA}",
    "dockerImageManifests": [{"digest": OTHER, "mediaType": "x"}],
}


@settings(max_examples=500, deadline=None)
@given(images)
@example(REGISTRY_IMAGE)
@example(INDEX)
def test_a_cached_image_reads_as_its_projection(image: dict[str, Any]) -> None:
    cached, projected = cached_image_blobs(copy.deepcopy(image)), project_image_blobs(image)
    assert dict(cached) == projected
    assert image_digest(cached) == image_digest(projected)
    assert image_blobs(cached) == image_blobs(projected)
    assert recorded_image(cached) == recorded_image(projected)


@settings(max_examples=300, deadline=None)
@given(images)
@example(REGISTRY_IMAGE)
def test_serve_keeps_the_size_beside_the_packed_blobs(image: dict[str, Any]) -> None:
    cached = cached_image(copy.deepcopy(image))
    assert cached.get(IMAGE_SIZE) == recorded_image_size(image)
    assert dict(cached) == {**project_image_blobs(image), IMAGE_SIZE: recorded_image_size(image)}


def test_a_registry_image_and_an_index_are_packed() -> None:
    assert isinstance(cached_image_blobs(REGISTRY_IMAGE), CompactImage)
    assert isinstance(cached_image_blobs(INDEX), CompactImage)
    assert isinstance(cached_image(REGISTRY_IMAGE), CompactImage)


def test_what_would_not_read_back_the_same_stays_a_dict() -> None:
    """Another algorithm, an upper-case digest, a size past int64 or a bool, a namespace."""
    layer = {"name": SHA, "size": 1}
    for odd in (
        {"dockerImageLayers": [{**layer, "name": "sha512:" + "ab" * 32}]},
        {"dockerImageLayers": [{**layer, "name": SHA.upper()}]},
        {"dockerImageLayers": [{**layer, "size": 2**63}]},
        {"dockerImageLayers": [{**layer, "size": True}]},
        {"dockerImageConfig": {"digest": SHA}},
        {"metadata": {"name": "x", "namespace": "team-a"}},
    ):
        image = {"metadata": {"name": "x"}, "dockerImageLayers": [layer], **odd}
        assert pack(project_image_blobs(image)) is None
        assert cached_image_blobs(image) == project_image_blobs(image)


def _traced(build: Any, count: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        kept = [build(i) for i in range(count)]
        gc.collect()
        used = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return used / count


def test_a_packed_registry_image_takes_under_a_third_of_its_projection() -> None:
    """Five layers: 1,634 bytes as a projected dict, 471 packed (tracemalloc, 2026-12-08)."""
    raw = [scale.image(i) for i in range(200)]
    projected = _traced(lambda i: project_image_blobs(raw[i]), len(raw))
    packed = _traced(lambda i: cached_image_blobs(raw[i]), len(raw))
    assert packed < projected / 3
