"""What the Image API still references, and the blobs those Images hold."""

from __future__ import annotations

from typing import Any

import pytest

from quota.imagerefs import (
    blob_sizes,
    image_blobs,
    image_digest,
    images_by_digest,
    namespace_images,
    referenced_images,
    with_children,
)
from quota.objects import Obj
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST

D = {name: f"sha256:{name * 64}"[:71] for name in "abcdefgh"}


def _image(
    digest: str,
    *,
    children: tuple[str, ...] = (),
    layers: tuple[tuple[str, int], ...] = (),
    config: tuple[str, int] | None = None,
    pushed_to: str | None = None,
) -> Obj:
    image: dict[str, Any] = {
        "metadata": {"name": digest.replace(":", "-")},
        "dockerImageReference": f"registry.example/ns/app@{digest}",
    }
    if pushed_to is not None:
        image["metadata"]["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: pushed_to}
    if children:
        image["dockerImageManifests"] = [{"digest": child} for child in children]
    if layers:
        image["dockerImageLayers"] = [{"name": name, "size": size} for name, size in layers]
    if config is not None:
        image["dockerImageConfig"] = {"digest": config[0], "size": config[1]}
    return image


def _stream(namespace: str, name: str, *digests: str) -> Obj:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "status": {"tags": [{"tag": "v1", "items": [{"image": digest} for digest in digests]}]},
    }


def test_image_digest_reads_the_reference_then_the_name() -> None:
    assert image_digest(_image(D["a"])) == D["a"]
    assert image_digest({"metadata": {"name": D["b"].replace(":", "-")}}) == D["b"]
    assert image_digest({"metadata": {"name": D["c"]}}) == D["c"]
    assert image_digest({"metadata": {}}) is None


def test_images_by_digest_leaves_unreadable_images_out() -> None:
    assert images_by_digest([_image(D["a"]), {"metadata": {}}]) == {D["a"]: _image(D["a"])}


def test_an_index_references_its_children_at_any_depth() -> None:
    images = {
        D["a"]: _image(D["a"], children=(D["b"],)),
        D["b"]: _image(D["b"], children=(D["c"],)),
        D["c"]: _image(D["c"]),
    }

    assert with_children([D["a"]], images) == {D["a"], D["b"], D["c"]}


def test_a_cycle_of_indexes_ends_where_it_repeats() -> None:
    images = {
        D["a"]: _image(D["a"], children=(D["b"],)),
        D["b"]: _image(D["b"], children=(D["a"],)),
    }

    assert with_children([D["a"]], images) == {D["a"], D["b"]}


def test_a_namespace_references_its_history_and_its_pushes_by_digest_only() -> None:
    images = {
        D["a"]: _image(D["a"]),
        D["b"]: _image(D["b"], pushed_to="team-a/app"),
        D["c"]: _image(D["c"], pushed_to="team-ab/app"),
        D["d"]: _image(D["d"]),
    }
    streams = [_stream("team-a", "app", D["a"]), _stream("team-b", "app", D["d"])]

    assert namespace_images("team-a", streams, images) == {D["a"], D["b"]}


def test_referenced_images_spans_every_namespace() -> None:
    images = {
        D["a"]: _image(D["a"]),
        D["b"]: _image(D["b"], pushed_to="team-c/app"),
        D["e"]: _image(D["e"]),
    }
    streams = [_stream("team-a", "app", D["a"])]

    assert referenced_images(streams, images) == {D["a"], D["b"]}


def test_image_blobs_are_the_config_and_layers_and_skip_malformed_entries() -> None:
    image = _image(D["a"], layers=((D["e"], 100), (D["f"], -1)), config=(D["g"], 10))
    image["dockerImageLayers"].append("not an object")

    assert [(blob.digest, blob.size) for blob in image_blobs(image)] == [
        (D["g"], 10),
        (D["e"], 100),
    ]


@pytest.mark.parametrize("image", [None, {}, {"dockerImageLayers": "x", "dockerImageConfig": 3}])
def test_a_missing_or_malformed_image_holds_nothing(image: Obj | None) -> None:
    assert image_blobs(image) == ()


def test_blob_sizes_count_a_shared_blob_once_at_its_largest_size() -> None:
    images = {
        D["a"]: _image(D["a"], layers=((D["e"], 100),), config=(D["g"], 10)),
        D["b"]: _image(D["b"], layers=((D["e"], 120), (D["f"], 5))),
    }

    assert blob_sizes([D["a"], D["b"], D["h"]], images) == {D["e"]: 120, D["f"]: 5, D["g"]: 10}
