"""Image size and ImageStream tag/image counting."""

import math
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.measure import (
    NOT_A_DIGEST,
    Descriptor,
    InvalidManifest,
    Manifest,
    StreamCounts,
    StreamUsage,
    image_size,
    manifest_from_dict,
    recorded_image_size,
    stream_image_digests,
    stream_tag_names,
    stream_usage,
)

D = Descriptor
CONFIG = "sha256:" + "c" * 64
LAYER = "sha256:" + "a" * 64


def stream(
    spec_tags: list[Any] | None = None,
    status_tags: list[Any] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "image.alauda.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "app"},
        "spec": {"tags": spec_tags},
        "status": {"tags": status_tags},
    }


def status_tag(tag: str, *images: str) -> dict[str, Any]:
    return {"tag": tag, "items": [{"image": image} for image in images]}


# --- image size -------------------------------------------------------------------------


def test_image_size_is_config_plus_layers() -> None:
    assert image_size(D("c", 10), [D("a", 100), D("b", 1000)]) == 1110


def test_image_size_counts_each_layer_digest_once() -> None:
    assert image_size(D("c", 10), [D("a", 100), D("b", 1000), D("a", 100)]) == 1110


def test_image_size_counts_config_separately_from_a_layer_with_its_digest() -> None:
    assert image_size(D("same", 10), [D("same", 10)]) == 20


def test_image_size_without_config_or_layers() -> None:
    assert image_size(None, []) == 0
    assert image_size(None, [D("a", 5)]) == 5
    assert image_size(D("c", 7), ()) == 7


def test_image_size_takes_the_largest_size_of_a_misdeclared_repeated_layer() -> None:
    assert image_size(None, [D("a", 100), D("a", 1)]) == 100
    assert image_size(None, [D("a", 1), D("a", 100)]) == 100


def test_image_size_accepts_a_generator() -> None:
    assert image_size(D("c", 1), (D(str(i), i) for i in range(4))) == 1 + 0 + 1 + 2 + 3


@given(
    st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 10**12)), max_size=20),
    st.integers(0, 10**6),
)
def test_image_size_equals_sum_over_distinct_digests(
    layers: list[tuple[str, int]], config_size: int
) -> None:
    sizes: dict[str, int] = {}
    for digest, size in layers:
        sizes[digest] = max(size, sizes.get(digest, 0))
    descriptors = [D(digest, size) for digest, size in layers]
    expected = config_size + sum(sizes.values())
    assert image_size(D("cfg", config_size), descriptors) == expected
    assert image_size(D("cfg", config_size), descriptors + descriptors) == expected
    assert image_size(D("cfg", config_size), list(reversed(descriptors))) == expected


def test_manifest_from_dict_reads_a_push_review_spec() -> None:
    manifest = manifest_from_dict(
        {
            "namespace": "team-a",
            "repository": "app",
            "config": {"digest": CONFIG, "size": 1469},
            "layers": [
                {"digest": LAYER, "size": 2811478, "mediaType": "x"},
                {"digest": LAYER, "size": 2811478},
            ],
        }
    )
    assert manifest == Manifest(D(CONFIG, 1469), (D(LAYER, 2811478), D(LAYER, 2811478)))
    assert manifest.size == 1469 + 2811478


@pytest.mark.parametrize(
    "spec",
    [{}, {"config": None, "layers": None}, {"layers": []}],
)
def test_manifest_from_dict_allows_an_index_without_config_or_layers(spec: dict[str, Any]) -> None:
    manifest = manifest_from_dict(spec)
    assert manifest == Manifest(None, ())
    assert manifest.size == 0


@pytest.mark.parametrize("size", [1469.0, 2e3, -0.0])
def test_a_size_written_as_an_integral_float_is_that_integer(size: float) -> None:
    """JSON has one number type, and JSON Schema (docs/openapi.yaml) counts 1469.0 as the
    integer 1469: a body that fits the document is judged, not refused."""
    manifest = manifest_from_dict(
        {"config": {"digest": CONFIG, "size": size}, "layers": [{"digest": LAYER, "size": size}]}
    )
    assert manifest == Manifest(Descriptor(CONFIG, int(size)), (Descriptor(LAYER, int(size)),))
    assert all(type(blob.size) is int for blob in (manifest.config, *manifest.layers) if blob)


@pytest.mark.parametrize(
    ("spec", "path", "detail"),
    [
        ({"config": CONFIG}, "spec.config", "must be an object with digest and size"),
        ({"config": {"size": 1}}, "spec.config.digest", "must be a non-empty string"),
        ({"config": {"digest": "", "size": 1}}, "spec.config.digest", "must be a non-empty string"),
        ({"config": {"digest": 5, "size": 1}}, "spec.config.digest", "must be a non-empty string"),
        ({"config": {"digest": CONFIG}}, "spec.config.size", "must be an integer"),
        ({"config": {"digest": CONFIG, "size": "1"}}, "spec.config.size", "must be an integer"),
        ({"config": {"digest": CONFIG, "size": 1.5}}, "spec.config.size", "must be an integer"),
        (
            {"config": {"digest": CONFIG, "size": math.nan}},
            "spec.config.size",
            "must be an integer",
        ),
        (
            {"config": {"digest": CONFIG, "size": math.inf}},
            "spec.config.size",
            "must be an integer",
        ),
        ({"config": {"digest": CONFIG, "size": True}}, "spec.config.size", "must be an integer"),
        (
            {"config": {"digest": CONFIG, "size": -1}},
            "spec.config.size",
            "must be greater than or equal to 0",
        ),
        ({"layers": {"digest": CONFIG, "size": 1}}, "spec.layers", "must be a list"),
        ({"layers": "d"}, "spec.layers", "must be a list"),
        (
            {"layers": [{"digest": CONFIG, "size": 1}, None]},
            "spec.layers[1]",
            "must be an object with digest and size",
        ),
        (
            {"layers": [{"digest": CONFIG, "size": 1}, {"digest": LAYER, "size": -5}]},
            "spec.layers[1].size",
            "must be greater than or equal to 0",
        ),
    ],
)
def test_manifest_from_dict_names_the_bad_field(
    spec: dict[str, Any], path: str, detail: str
) -> None:
    with pytest.raises(InvalidManifest) as info:
        manifest_from_dict(spec)
    assert isinstance(info.value, ValueError)
    assert info.value.path == path
    assert info.value.detail == detail
    assert str(info.value) == f"{path}: {detail}"


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"config": {"digest": "sha256:c", "size": 1}}, "spec.config.digest"),
        ({"layers": [{"digest": "sha256:" + "a" * 65, "size": 1}]}, "spec.layers[0].digest"),
        ({"layers": [{"digest": "SHA256:" + "a" * 64, "size": 1}]}, "spec.layers[0].digest"),
        ({"layers": [{"digest": "sha256:" + "a" * 64 + "\n", "size": 1}]}, "spec.layers[0].digest"),
    ],
)
def test_a_malformed_descriptor_digest_is_invalid_naming_the_field(
    spec: dict[str, Any], path: str
) -> None:
    """A config or layer digest follows the digest grammar and its algorithm's registered
    encoding (quota.names.is_digest), as the front door's manifests do."""
    with pytest.raises(InvalidManifest) as info:
        manifest_from_dict(spec)
    assert info.value.path == path
    assert info.value.detail == NOT_A_DIGEST


def test_manifest_from_dict_uses_the_given_path_prefix() -> None:
    with pytest.raises(InvalidManifest) as info:
        manifest_from_dict({"layers": [7]}, path="body.spec")
    assert info.value.path == "body.spec.layers[0]"


# --- ImageStream tags and images ---------------------------------------------------------


def test_tag_names_are_spec_names_together_with_status_tags() -> None:
    obj = stream(
        spec_tags=[{"name": "latest"}, {"name": "v1"}],
        status_tags=[status_tag("v1", "sha256:1"), status_tag("v2", "sha256:2")],
    )
    assert stream_tag_names(obj) == {"latest", "v1", "v2"}


def test_image_digests_cover_the_whole_history() -> None:
    obj = stream(
        status_tags=[
            status_tag("latest", "sha256:3", "sha256:2", "sha256:1"),
            status_tag("v1", "sha256:1"),
        ],
    )
    assert stream_image_digests(obj) == {"sha256:1", "sha256:2", "sha256:3"}


def test_spec_tags_do_not_contribute_images() -> None:
    obj = stream(spec_tags=[{"name": "v1", "from": {"kind": "DockerImage", "name": "x@sha256:9"}}])
    assert stream_image_digests(obj) == frozenset()
    assert stream_tag_names(obj) == {"v1"}


@pytest.mark.parametrize(
    "obj",
    [
        None,
        {},
        {"spec": None, "status": None},
        {"spec": [], "status": "x"},
        stream(),
        stream(spec_tags=[], status_tags=[]),
        {"spec": {"tags": {"name": "v1"}}, "status": {"tags": "v1"}},
        {"spec": {"tags": 5}, "status": {"tags": {"tag": "v1", "items": []}}},
        stream(spec_tags=[None, "v1", 3, ["v1"]], status_tags=[None, "v1", 7]),
        stream(spec_tags=[{"name": None}, {"name": ""}, {"name": 5}, {}]),
        stream(status_tags=[{"tag": None}, {"tag": ""}, {"tag": ["v1"]}]),
    ],
)
def test_absent_null_or_malformed_fields_count_as_empty(obj: Any) -> None:
    assert stream_tag_names(obj) == frozenset()
    assert stream_image_digests(obj) == frozenset()
    assert stream_usage(obj) == StreamUsage()
    assert stream_usage(obj).counts == StreamCounts(0, 0)


@pytest.mark.parametrize(
    "items",
    [
        None,
        "sha256:1",
        {"image": "sha256:1"},
        [None, "sha256:1", 4, {"image": None}, {"image": ""}, {"image": 9}, {}],
    ],
)
def test_malformed_items_contribute_no_digest(items: Any) -> None:
    obj = stream(status_tags=[{"tag": "v1", "items": items}])
    assert stream_image_digests(obj) == frozenset()
    assert stream_tag_names(obj) == {"v1"}


def test_good_entries_survive_among_bad_ones() -> None:
    obj = stream(
        spec_tags=[None, {"name": "a"}, "b", {"name": ""}],
        status_tags=[
            7,
            {"tag": "c", "items": [None, {"image": "sha256:1"}, {"image": ""}]},
            {"items": [{"image": "sha256:2"}]},  # no tag name, history still counts
        ],
    )
    assert stream_usage(obj) == StreamUsage(
        frozenset({"a", "c"}), frozenset({"sha256:1", "sha256:2"})
    )
    assert stream_usage(obj).counts == StreamCounts(tags=2, images=2)


def test_usage_after_push_to_a_new_repository() -> None:
    assert stream_usage(None).with_push("v1", "sha256:1") == StreamUsage(
        frozenset({"v1"}), frozenset({"sha256:1"})
    )


def test_usage_after_push_by_digest_adds_no_tag() -> None:
    assert stream_usage(None).with_push(None, "sha256:1").counts == StreamCounts(0, 1)
    assert stream_usage(None).with_push("", "sha256:1").counts == StreamCounts(0, 1)


def test_usage_after_push_onto_an_existing_stream() -> None:
    obj = stream(status_tags=[status_tag("v1", "sha256:1")])
    assert stream_usage(obj).with_push("v1", "sha256:1").counts == StreamCounts(1, 1)
    assert stream_usage(obj).with_push("v1", "sha256:2").counts == StreamCounts(1, 2)
    assert stream_usage(obj).with_push("v2", "sha256:1").counts == StreamCounts(2, 1)
    assert stream_usage(obj).with_push("v2", "sha256:2").counts == StreamCounts(2, 2)
    assert stream_usage(obj).with_push(None, None).counts == StreamCounts(1, 1)


def test_usage_after_push_does_not_modify_the_usage() -> None:
    usage = stream_usage(stream(status_tags=[status_tag("v1", "sha256:1")]))
    usage.with_push("v2", "sha256:2")
    assert usage.counts == StreamCounts(1, 1)


# --- properties -------------------------------------------------------------------------

names = st.sampled_from(["latest", "v1", "v2", "v3", "stable", "dev"])
digests = st.sampled_from([f"sha256:{n}" for n in "0123456789ab"])
junk = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.none(), max_size=2))


@st.composite
def streams(draw: st.DrawFn) -> tuple[dict[str, Any], set[str], set[str]]:
    """A stream with junk interleaved, and the tags and digests it really has."""
    spec_names = draw(st.lists(names, max_size=8))
    history = draw(st.lists(st.tuples(names, st.lists(digests, max_size=5)), max_size=8))
    spec_tags: list[Any] = [{"name": name} for name in spec_names]
    spec_tags += draw(st.lists(junk, max_size=3))
    status_tags: list[Any] = []
    for tag, tag_digests in history:
        items: list[Any] = [{"image": digest, "generation": 1} for digest in tag_digests]
        items += draw(st.lists(st.one_of(junk, st.just({"image": ""})), max_size=2))
        status_tags.append({"tag": tag, "items": draw(st.permutations(items))})
    status_tags += draw(st.lists(junk, max_size=3))
    obj = stream(
        spec_tags=list(draw(st.permutations(spec_tags))),
        status_tags=list(draw(st.permutations(status_tags))),
    )
    tags = set(spec_names) | {tag for tag, _ in history}
    images = {digest for _, tag_digests in history for digest in tag_digests}
    return obj, tags, images


@given(streams())
def test_counts_equal_the_number_of_distinct_names_and_digests(
    generated: tuple[dict[str, Any], set[str], set[str]],
) -> None:
    obj, tags, images = generated
    assert stream_tag_names(obj) == tags
    assert stream_image_digests(obj) == images
    assert stream_usage(obj).counts == StreamCounts(len(tags), len(images))


@given(streams(), st.randoms(use_true_random=False))
def test_counts_are_invariant_under_duplication_and_reordering(
    generated: tuple[dict[str, Any], set[str], set[str]], rnd: Any
) -> None:
    obj, _, _ = generated
    expected = stream_usage(obj)
    spec_tags = list(obj["spec"]["tags"]) * 2
    status_tags = [
        {**tag, "items": list(tag["items"]) * 2} if isinstance(tag, dict) else tag
        for tag in obj["status"]["tags"] * 2
    ]
    rnd.shuffle(spec_tags)
    rnd.shuffle(status_tags)
    assert stream_usage(stream(spec_tags, status_tags)) == expected


@given(streams(), st.one_of(st.none(), names), st.one_of(st.none(), digests))
def test_push_adds_at_most_one_tag_and_one_image(
    generated: tuple[dict[str, Any], set[str], set[str]], tag: str | None, digest: str | None
) -> None:
    obj, tags, images = generated
    after = stream_usage(obj).with_push(tag, digest)
    assert after.tags == tags | ({tag} if tag else set())
    assert after.images == images | ({digest} if digest else set())


@pytest.mark.parametrize(
    ("image", "size"),
    [
        (None, None),
        ({}, None),
        ({"dockerImageMetadata": {"size": 42}}, 42),
        ({"dockerImageMetadata": {"size": -1}}, None),
        ({"dockerImageMetadata": {"size": True}}, None),
        (
            {
                "dockerImageConfig": {"digest": "sha256:c", "size": 10},
                "dockerImageLayers": [
                    {"name": "sha256:a", "size": 100},
                    {"name": "sha256:a", "size": 100},
                    {"name": "sha256:b", "size": 5},
                ],
                "dockerImageMetadata": {"size": 1},
            },
            115,
        ),
        ({"dockerImageLayers": [{"name": "sha256:a", "size": 7}]}, 7),
        ({"dockerImageLayers": [{"name": "sha256:a"}]}, None),
        ({"dockerImageLayers": ["x"]}, None),
    ],
)
def test_recorded_image_size(image: Any, size: int | None) -> None:
    assert recorded_image_size(image) == size


def test_an_empty_layer_list_falls_back_to_the_metadata_size() -> None:
    image = {"dockerImageLayers": [], "dockerImageMetadata": {"size": 42}}
    assert recorded_image_size(image) == 42


def test_empty_blobs_count_as_zero_bytes_not_as_unknown() -> None:
    image = {
        "dockerImageLayers": [{"name": "sha256:a", "size": 0}, {"name": "sha256:b", "size": 7}],
        "dockerImageConfig": {"digest": "sha256:c", "size": 0},
    }
    assert recorded_image_size(image) == 7
    assert recorded_image_size({"dockerImageMetadata": {"size": 0}}) == 0


def test_a_config_without_a_size_is_left_out() -> None:
    image = {
        "dockerImageLayers": [{"name": "sha256:a", "size": 5}],
        "dockerImageConfig": {"digest": "sha256:c"},
    }
    assert recorded_image_size(image) == 5


def test_a_pushed_empty_blob_is_accepted() -> None:
    spec = {
        "config": {"digest": CONFIG, "size": 0},
        "layers": [{"digest": LAYER, "size": 0}],
    }
    assert manifest_from_dict(spec).size == 0


def test_a_stream_of_any_mapping_is_measured_like_a_dict() -> None:
    """Dicts take a fast path; a read-only view of a cached object counts all the same."""
    plain = stream(
        [{"name": "v1"}], [{"tag": "v2", "items": [{"image": "sha256:1"}, {"image": "sha256:2"}]}]
    )

    def frozen(value: Any) -> Any:
        if isinstance(value, dict):
            return MappingProxyType({k: frozen(v) for k, v in value.items()})
        if isinstance(value, list):
            return [frozen(v) for v in value]
        return value

    assert (
        stream_usage(frozen(plain))
        == stream_usage(plain)
        == StreamUsage(frozenset({"v1", "v2"}), frozenset({"sha256:1", "sha256:2"}))
    )
