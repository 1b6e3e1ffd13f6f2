"""What alauda.io/image-storage counts: distinct blobs per namespace, and a push's new bytes."""

from __future__ import annotations

from typing import Any

from quota.imagerefs import images_by_digest
from quota.measure import Descriptor
from quota.objects import Obj
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST
from quota.storage import blobs_held, namespace_blobs, new_bytes, storage_used

M = {name: f"sha256:{name * 64}" for name in "abcdef"}
"""Manifest digests."""
B = {name: f"sha256:{name * 64}" for name in "uvwxyz"}
"""Blob digests."""


def image(
    digest: str,
    layers: tuple[tuple[str, int], ...] = (),
    config: tuple[str, int] | None = None,
    children: tuple[str, ...] = (),
    pushed_to: str | None = None,
) -> Obj:
    obj: dict[str, Any] = {
        "metadata": {"name": digest.replace(":", "-")},
        "dockerImageReference": f"registry.example/ns/app@{digest}",
        "dockerImageLayers": [{"name": name, "size": size} for name, size in layers],
    }
    if config is not None:
        obj["dockerImageConfig"] = {"digest": config[0], "size": config[1]}
    if children:
        obj["dockerImageManifests"] = [{"digest": child} for child in children]
    if pushed_to is not None:
        obj["metadata"]["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: pushed_to}
    return obj


def stream(namespace: str, name: str, *history: str) -> Obj:
    items = [{"image": digest} for digest in history]
    return {
        "metadata": {"namespace": namespace, "name": name},
        "status": {"tags": [{"tag": "v1", "items": items}]},
    }


IMAGES = images_by_digest(
    [
        image(M["a"], ((B["u"], 100), (B["v"], 200)), (B["w"], 10)),
        image(M["b"], ((B["u"], 100), (B["x"], 400)), (B["w"], 10)),
        image(M["c"], ((B["y"], 1000),)),
        image(M["d"], children=(M["c"], M["a"])),
        image(M["e"], ((B["z"], 7),), pushed_to="team-a/app"),
    ]
)


def test_a_blob_two_images_of_a_namespace_share_is_counted_once() -> None:
    blobs = namespace_blobs("team-a", [stream("team-a", "s", M["a"], M["b"])], {})
    assert blobs == {}  # no Images known: nothing is held
    blobs = namespace_blobs(
        "team-a", [stream("team-a", "s", M["a"]), stream("team-a", "t", M["b"])], IMAGES
    )
    assert storage_used(blobs) == 100 + 200 + 10 + 400 + 7


def test_an_index_is_counted_through_its_childrens_images() -> None:
    blobs = namespace_blobs("team-b", [stream("team-b", "multi", M["d"])], IMAGES)
    assert blobs == {B["y"]: 1000, B["u"]: 100, B["v"]: 200, B["w"]: 10}


def test_each_namespace_counts_what_it_references_alone() -> None:
    streams = [stream("team-b", "s", M["c"]), stream("team-c", "s", M["c"])]
    assert storage_used(namespace_blobs("team-b", streams, IMAGES)) == 1000
    assert storage_used(namespace_blobs("team-c", streams, IMAGES)) == 1000
    assert storage_used(namespace_blobs("team-d", streams, IMAGES)) == 0


def test_an_image_pushed_by_digest_counts_in_its_namespace() -> None:
    assert namespace_blobs("team-a", [], IMAGES) == {B["z"]: 7}


def test_a_push_adds_only_the_blobs_the_namespace_does_not_hold() -> None:
    held = {B["u"]: 100, B["w"]: 10}
    pushed = [Descriptor(B["u"], 100), Descriptor(B["w"], 99), Descriptor(B["x"], 400)]
    assert new_bytes(pushed, held) == 400
    assert new_bytes(pushed[:2], held) == 0
    assert new_bytes([Descriptor(B["y"], 5), Descriptor(B["y"], 5)], {}) == 5


def test_what_a_cache_keeps_gives_the_same_blobs_as_the_whole_streams() -> None:
    streams = [stream("team-a", "s", M["d"]), stream("team-a", "t", M["b"])]
    assert blobs_held([M["d"], M["b"]], [M["e"]], IMAGES) == namespace_blobs(
        "team-a", streams, IMAGES
    )
