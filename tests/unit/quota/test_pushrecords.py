"""The Image objects and tag history an accepted push leaves, as the limits then read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quota.measure import (
    Descriptor,
    Manifest,
    recorded_image_size,
    stream_image_digests,
    stream_tag_names,
)
from quota.push import IndexChild, Push
from quota.pushrecords import (
    ANNOTATION_PUSHED_BY_DIGEST,
    image_object,
    image_object_name,
    image_reference,
    status_with_tag_event,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
A, B, C = (f"sha256:{c * 64}" for c in "abc")
REF = image_reference("registry.example:5000", "team-a/app", A)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def image_push(manifest: Manifest) -> Push:
    return Push("team-a", "app", "v1", A, OCI_MANIFEST, manifest)


def index_push(*children: IndexChild) -> Push:
    return Push("team-a", "app", "v1", A, OCI_INDEX, Manifest(None), children)


def child(
    digest: str, manifest_size: int, image_size: int, platform: dict[str, str] | None = None
) -> IndexChild:
    """A child manifest of ``manifest_size`` bytes describing an image of ``image_size``."""
    return IndexChild(
        digest, OCI_MANIFEST, manifest_size, platform, Manifest(Descriptor(digest, image_size))
    )


def stream(*tags: tuple[str, list[str]], generation: int = 3) -> dict[str, object]:
    return {
        "metadata": {"name": "app", "namespace": "team-a", "generation": generation},
        "status": {
            "dockerImageRepository": "kept",
            "tags": [
                {"tag": tag, "items": [{"image": d, "created": "2026-01-01T00:00:00Z"} for d in ds]}
                for tag, ds in tags
            ],
        },
    }


def test_the_first_push_of_a_tag_starts_its_history() -> None:
    status = status_with_tag_event(stream(), "v1", A, REF, NOW)
    assert status == {
        "dockerImageRepository": "kept",
        "tags": [
            {
                "tag": "v1",
                "items": [
                    {
                        "created": "2026-11-28T12:00:00Z",
                        "dockerImageReference": REF,
                        "image": A,
                        "generation": 3,
                    }
                ],
            }
        ],
    }


def test_a_new_image_for_a_tag_goes_first_and_keeps_the_older_ones() -> None:
    original = stream(("v1", [B]), ("v2", [C]))
    status = status_with_tag_event(original, "v1", A, REF, NOW)
    assert status is not None
    assert [item["image"] for item in status["tags"][0]["items"]] == [A, B]
    assert status["tags"][1] == original["status"]["tags"][1]  # type: ignore[index]
    after = {**original, "status": status}
    assert stream_image_digests(after) == {A, B, C}
    assert stream_tag_names(after) == {"v1", "v2"}
    assert [i["image"] for i in original["status"]["tags"][0]["items"]] == [B]  # type: ignore[index]


def test_pushing_the_image_a_tag_already_points_at_records_nothing() -> None:
    """A client retrying a push (or two pushes of one image) leaves one history entry."""
    assert status_with_tag_event(stream(("v1", [A, B])), "v1", A, REF, NOW) is None


def test_an_older_image_pushed_again_becomes_newest() -> None:
    status = status_with_tag_event(stream(("v1", [A, B])), "v1", B, REF, NOW + timedelta(1))
    assert status is not None
    assert [item["image"] for item in status["tags"][0]["items"]] == [B, A, B]


def test_a_stream_without_status_or_with_garbage_gets_a_clean_one() -> None:
    for broken in ({}, {"status": None}, {"status": {"tags": "x"}}):
        status = status_with_tag_event(broken, "v1", A, REF, NOW)
        assert status is not None
        assert status["tags"] == [{"tag": "v1", "items": [status["tags"][0]["items"][0]]}]
        assert status["tags"][0]["items"][0]["generation"] == 1


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        status_with_tag_event(stream(), "v1", A, REF, datetime(2026, 1, 1))


def test_an_image_object_records_the_size_the_limit_measures() -> None:
    layers = (Descriptor(B, 100), Descriptor(B, 100), Descriptor(C, 50))
    manifest = Manifest(Descriptor(A, 7), layers)
    image = image_object(image_push(manifest), REF)
    assert image["metadata"] == {"name": "sha256-" + "a" * 64}
    assert recorded_image_size(image) == manifest.size == 157
    assert image["dockerImageConfig"] == {"digest": A, "size": 7}
    assert [layer["name"] for layer in image["dockerImageLayers"]] == [B, B, C]


def test_an_index_image_is_as_large_as_its_largest_child() -> None:
    image = image_object(index_push(child(B, 500, 1000, {"os": "linux"}), child(C, 400, 3000)), REF)
    assert recorded_image_size(image) == 3000
    assert [m["digest"] for m in image["dockerImageManifests"]] == [B, C]
    assert image["dockerImageManifests"][0]["platform"] == {"os": "linux"}
    assert "platform" not in image["dockerImageManifests"][1]


def test_object_names_never_hold_a_colon() -> None:
    assert image_object_name(A) == "sha256-" + "a" * 64
    assert image_object_name("sha512:ab") == "sha512-ab"


def test_an_image_object_is_exactly_what_the_image_api_stores() -> None:
    """Every field name and value: the caches and the limits read these by name."""
    layers = (Descriptor(B, 100, "layer-b"), Descriptor(C, 50, "layer-c"))
    image = image_object(image_push(Manifest(Descriptor(A, 7), layers)), REF)
    assert image == {
        "apiVersion": "image.alauda.io/v1",
        "kind": "Image",
        "metadata": {"name": "sha256-" + "a" * 64},
        "dockerImageReference": REF,
        "dockerImageManifestMediaType": OCI_MANIFEST,
        "dockerImageMetadata": {"size": 157},
        "dockerImageLayers": [
            {"name": B, "size": 100, "mediaType": "layer-b"},
            {"name": C, "size": 50, "mediaType": "layer-c"},
        ],
        "dockerImageConfig": {"digest": A, "size": 7},
    }


def test_an_index_image_object_is_exactly_what_the_image_api_stores() -> None:
    children = (child(B, 500, 1000, {"os": "linux", "architecture": "arm64"}), child(C, 400, 3000))
    assert image_object(index_push(*children), REF) == {
        "apiVersion": "image.alauda.io/v1",
        "kind": "Image",
        "metadata": {"name": "sha256-" + "a" * 64},
        "dockerImageReference": REF,
        "dockerImageManifestMediaType": OCI_INDEX,
        "dockerImageMetadata": {"size": 3000},
        "dockerImageManifests": [
            {
                "digest": B,
                "mediaType": OCI_MANIFEST,
                "manifestSize": 500,
                "platform": {"os": "linux", "architecture": "arm64"},
            },
            {"digest": C, "mediaType": OCI_MANIFEST, "manifestSize": 400},
        ],
    }


def test_only_an_image_pushed_by_digest_is_marked_with_its_repository() -> None:
    """What reads serve untagged (``quota.served``): a tag push's Image has no mark."""
    manifest = Manifest(Descriptor(A, 7), ())
    marked = {"name": "sha256-" + "a" * 64, "annotations": {ANNOTATION_PUSHED_BY_DIGEST: "t/app"}}
    assert image_object(image_push(manifest), REF, "t/app")["metadata"] == marked
    assert image_object(index_push(), REF, "t/app")["metadata"] == marked
    assert "annotations" not in image_object(image_push(manifest), REF)["metadata"]
    assert "annotations" not in image_object(index_push(), REF)["metadata"]


def test_an_empty_index_records_size_zero() -> None:
    image = image_object(index_push(), REF)
    assert recorded_image_size(image) == 0
    assert image["dockerImageManifests"] == []


def test_a_push_of_a_later_tag_moves_only_that_tag() -> None:
    original = stream(("v1", [B]), ("v2", [C]))
    status = status_with_tag_event(original, "v2", A, REF, NOW)
    assert status is not None
    assert status["tags"][0] == original["status"]["tags"][0]  # type: ignore[index]
    assert [item["image"] for item in status["tags"][1]["items"]] == [A, C]


def test_a_tag_whose_history_is_garbage_starts_a_clean_one() -> None:
    """Unreadable history (not a list, empty, or not objects) never blocks a push."""
    for items in ("x", [], ["garbage"], None):
        broken = {"status": {"tags": [{"tag": "v1", "items": items}]}}
        status = status_with_tag_event(broken, "v1", A, REF, NOW)
        assert status is not None
        history = status["tags"][0]["items"]
        assert history[0]["image"] == A
        assert history[1:] == (items if isinstance(items, list) else [])
