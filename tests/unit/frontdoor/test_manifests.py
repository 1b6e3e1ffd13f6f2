"""Manifest PUT bodies: each type, Content-Type against mediaType, sizes, and bad input."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdoor import manifests as m
from frontdoor.distribution import RegistryError
from frontdoor.manifests import (
    ImageIndex,
    ImageManifest,
    check_reference,
    digest_of,
    parse_manifest,
)
from quota.measure import Descriptor, manifest_from_dict


def digest(n: int) -> str:
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


def blob(
    n: int, size: int, media: str = "application/vnd.oci.image.layer.v1.tar+gzip"
) -> dict[str, Any]:
    return {"mediaType": media, "digest": digest(n), "size": size}


def image(media: str | None = m.OCI_MANIFEST, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "config": blob(0, 100, "application/vnd.oci.image.config.v1+json"),
        "layers": [blob(1, 1000), blob(2, 2000)],
    }
    if media is not None:
        document["mediaType"] = media
    document.update(fields)
    return document


def index(media: str | None = m.OCI_INDEX, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "manifests": [
            {**blob(3, 500, m.OCI_MANIFEST), "platform": {"architecture": "amd64", "os": "linux"}},
            blob(4, 600, m.OCI_MANIFEST),
        ],
    }
    if media is not None:
        document["mediaType"] = media
    document.update(fields)
    return document


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def refusal(body: bytes, content_type: str | None) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        parse_manifest(body, content_type)
    return caught.value


@pytest.mark.parametrize("media", [m.OCI_MANIFEST, m.DOCKER_MANIFEST])
def test_image_manifest_by_content_type(media: str) -> None:
    parsed = parse_manifest(encode(image(media)), media)
    assert isinstance(parsed, ImageManifest)
    assert parsed.media_type == media
    assert parsed.manifest.config == Descriptor(
        digest(0), 100, "application/vnd.oci.image.config.v1+json"
    )
    assert [layer.digest for layer in parsed.manifest.layers] == [digest(1), digest(2)]
    assert [layer.size for layer in parsed.manifest.layers] == [1000, 2000]
    assert parsed.manifest.size == 3100


@pytest.mark.parametrize("media", [m.OCI_INDEX, m.DOCKER_LIST])
def test_index_by_content_type(media: str) -> None:
    parsed = parse_manifest(encode(index(media)), f"{media}; charset=utf-8")
    assert isinstance(parsed, ImageIndex)
    assert parsed.media_type == media
    assert parsed.manifests == (
        m.IndexEntry(m.OCI_MANIFEST, digest(3), 500, {"architecture": "amd64", "os": "linux"}),
        m.IndexEntry(m.OCI_MANIFEST, digest(4), 600, None),
    )


@pytest.mark.parametrize("header", [None, "", "application/json", "application/octet-stream"])
@pytest.mark.parametrize("media", [m.OCI_MANIFEST, m.DOCKER_MANIFEST, m.OCI_INDEX, m.DOCKER_LIST])
def test_generic_content_type_lets_the_body_decide(header: str | None, media: str) -> None:
    document = image(media) if media in m.IMAGE_TYPES else index(media)
    assert parse_manifest(encode(document), header).media_type == media


def test_oci_types_may_leave_media_type_out_when_the_header_names_it() -> None:
    assert parse_manifest(encode(image(None)), m.OCI_MANIFEST).media_type == m.OCI_MANIFEST
    assert parse_manifest(encode(index(None)), m.OCI_INDEX).media_type == m.OCI_INDEX


@pytest.mark.parametrize(
    ("document", "header"), [(image(None), m.DOCKER_MANIFEST), (index(None), m.DOCKER_LIST)]
)
def test_docker_types_must_carry_media_type(document: dict[str, Any], header: str) -> None:
    error = refusal(encode(document), header)
    assert error.code == "MANIFEST_INVALID"
    assert "mediaType is required" in error.message


def test_no_type_anywhere_is_refused() -> None:
    error = refusal(encode(image(None)), None)
    assert error.message == (
        "mediaType is required when the Content-Type does not name the manifest type"
    )


@pytest.mark.parametrize(
    ("body_type", "header"),
    [
        (m.OCI_MANIFEST, m.DOCKER_MANIFEST),
        (m.DOCKER_MANIFEST, m.OCI_MANIFEST),
        (m.OCI_INDEX, m.OCI_MANIFEST),
        (m.OCI_MANIFEST, m.OCI_INDEX),
    ],
)
def test_header_and_body_must_agree(body_type: str, header: str) -> None:
    document = image(body_type) if body_type in m.IMAGE_TYPES else index(body_type)
    error = refusal(encode(document), header)
    assert (error.status, error.code) == (400, "MANIFEST_INVALID")
    assert "does not match the Content-Type" in error.message


@pytest.mark.parametrize(
    "header",
    [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ],
)
def test_schema1_is_refused_saying_why(header: str) -> None:
    error = refusal(encode({"schemaVersion": 1, "fsLayers": []}), header)
    assert error.code == "MANIFEST_INVALID"
    assert "schema 1" in error.message
    assert "no layer sizes" in error.message


@pytest.mark.parametrize("header", ["text/plain", "application/vnd.oci.image.config.v1+json"])
def test_unknown_types_are_refused(header: str) -> None:
    error = refusal(encode(image(None)), header)
    assert error.code == "MANIFEST_INVALID"
    assert "is not supported: expected one of" in error.message


def test_unknown_body_type_is_refused() -> None:
    assert "is not supported" in refusal(encode(image("application/x-tar")), None).message


def test_size_is_quota_measure_s_rule_for_duplicate_layers() -> None:
    layers = [blob(1, 1000), blob(2, 2000), blob(1, 1000), blob(2, 2500)]
    document = image(layers=layers)
    parsed = parse_manifest(encode(document), m.OCI_MANIFEST)
    assert isinstance(parsed, ImageManifest)
    assert parsed.manifest.size == manifest_from_dict(document).size
    assert parsed.manifest.size == 100 + 1000 + 2500  # each digest once, the largest size
    assert len(parsed.manifest.layers) == 4  # the descriptors as declared


def test_empty_layers_are_an_image_of_its_config() -> None:
    parsed = parse_manifest(encode(image(layers=[])), m.OCI_MANIFEST)
    assert isinstance(parsed, ImageManifest)
    assert parsed.manifest.size == 100


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (
            image(layers=[blob(1, 1), {**blob(2, 2), "size": -1}, blob(3, 3)]),
            "layers[1].size must be a non-negative integer",
        ),
        (
            image(layers=[blob(1, 1), blob(2, 2), {**blob(3, 3), "size": "3"}]),
            "layers[2].size must be a non-negative integer",
        ),
        (
            image(layers=[{**blob(1, 1), "size": 1.0}]),
            "layers[0].size must be a non-negative integer",
        ),
        (
            image(layers=[{**blob(1, 1), "size": True}]),
            "layers[0].size must be a non-negative integer",
        ),
        (
            image(layers=[{**blob(1, 1), "size": 2**63}]),
            "layers[0].size must be a non-negative integer",
        ),
        (
            image(layers=[{"digest": digest(1), "size": 1}]),
            "layers[0].mediaType must be a non-empty string",
        ),
        (
            image(layers=[{**blob(1, 1), "digest": "sha256:abc"}]),
            "layers[0].digest must be a digest",
        ),
        (image(layers=[7]), "layers[0] must be an object"),
        (image(layers={"0": blob(1, 1)}), "layers must be a list"),
        (image(layers=None), "layers must be a list"),
        ({k: v for k, v in image().items() if k != "config"}, "config is required"),
        (image(config=None), "config must be an object"),
        (image(config={**blob(0, 1), "size": -5}), "config.size must be a non-negative integer"),
        (image(schemaVersion=1), "schemaVersion must be 2"),
        (image(schemaVersion=2.0), "schemaVersion must be 2"),
        (image(schemaVersion="2"), "schemaVersion must be 2"),
        (image(mediaType=3), "mediaType must be a string"),
        (index(manifests=None), "manifests must be a list"),
        (
            index(manifests=[{**blob(3, 1), "size": -1}]),
            "manifests[0].size must be a non-negative integer",
        ),
        (
            index(manifests=[{**blob(3, 1), "platform": "linux"}]),
            "manifests[0].platform must be an object",
        ),
        (
            index(manifests=[{**blob(3, 1), "platform": {"os": "linux"}}]),
            "manifests[0].platform.architecture must be a string",
        ),
    ],
)
def test_bad_fields_are_named(document: dict[str, Any], says: str) -> None:
    header = m.OCI_INDEX if "manifests" in document else m.OCI_MANIFEST
    error = refusal(encode(document), None if "mediaType" in document else header)
    assert (error.status, error.code) == (400, "MANIFEST_INVALID")
    assert says in error.message


def test_largest_int64_size_is_accepted() -> None:
    config = blob(0, 0, "application/vnd.oci.image.config.v1+json")
    body = encode(image(config=config, layers=[blob(1, 2**63 - 1)]))
    parsed = parse_manifest(body, m.OCI_MANIFEST)
    assert isinstance(parsed, ImageManifest)
    assert parsed.manifest.layers[0].size == parsed.manifest.size == 2**63 - 1
    # A layer named twice counts once toward the bound, as the image's size counts it.
    twice = encode(image(config=config, layers=[blob(1, 2**63 - 1), blob(1, 2**63 - 1)]))
    assert isinstance(parse_manifest(twice, m.OCI_MANIFEST), ImageManifest)


@pytest.mark.parametrize(
    ("config_size", "layer_sizes"),
    [(100, [2**63 - 1, 2**63 - 1]), (1, [2**63 - 1]), (0, [2**62, 2**62])],
)
def test_an_image_whose_size_overflows_int64_is_invalid(
    config_size: int, layer_sizes: list[int]
) -> None:
    """Each size fits an int64, their sum does not: the Image API could never record it."""
    config = blob(0, config_size, "application/vnd.oci.image.config.v1+json")
    layers = [blob(n, size) for n, size in enumerate(layer_sizes, start=1)]
    error = refusal(encode(image(config=config, layers=layers)), m.OCI_MANIFEST)
    total = config_size + sum(layer_sizes)
    assert (error.status, error.code) == (400, "MANIFEST_INVALID")
    assert error.message == (
        f"the image's size, config plus distinct layers, is {total} bytes: more than"
        f" {2**63 - 1}, the most the Image API records (an int64)"
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "manifest is empty"),
        (encode(image())[:-5], "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"manifest"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"\xff\xfe{}", "not UTF-8 at byte 0"),
        (b'{"schemaVersion": 2, "x": NaN}', "NaN is not JSON"),
        (b'{"schemaVersion": 2, "x": Infinity}', "not valid JSON"),
        (b'{"size": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"[" * 100 + b"]" * 100, "nested more than 16 levels deep"),
        (b'{"a":' * 17 + b"1" + b"}" * 17, "nested more than 16 levels deep"),
        (b"[" + b"0," * 200_000 + b"0]", "more than"),
    ],
)
def test_bad_bodies_are_manifest_invalid(body: bytes, says: str) -> None:
    error = refusal(body, m.OCI_MANIFEST)
    assert error.code == "MANIFEST_INVALID"
    assert says in error.message


def test_a_body_past_distribution_s_limit_is_refused() -> None:
    document = image(annotations={"pad": "x" * m.MAX_MANIFEST_BYTES})
    error = refusal(encode(document), m.OCI_MANIFEST)
    assert error.message == f"manifest is larger than {m.MAX_MANIFEST_BYTES} bytes"


def test_a_body_at_the_limit_is_read() -> None:
    document = image()
    padding = m.MAX_MANIFEST_BYTES - len(encode({**document, "annotations": {"pad": ""}}))
    body = encode({**document, "annotations": {"pad": "x" * padding}})
    assert len(body) == m.MAX_MANIFEST_BYTES
    assert isinstance(parse_manifest(body, m.OCI_MANIFEST), ImageManifest)


# --- references ------------------------------------------------------------------------------

BODY = encode(image())


def test_digest_of_is_sha256_of_the_bytes() -> None:
    assert digest_of(BODY) == "sha256:" + hashlib.sha256(BODY).hexdigest()


def test_a_tag_reference_is_returned() -> None:
    assert check_reference("v1.2_rc-3", BODY) == "v1.2_rc-3"


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_a_digest_reference_equal_to_the_body_s_is_no_tag(algorithm: str) -> None:
    reference = f"{algorithm}:" + hashlib.new(algorithm, BODY).hexdigest()
    assert check_reference(reference, BODY) is None


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_a_digest_reference_of_other_bytes_is_digest_invalid(algorithm: str) -> None:
    reference = f"{algorithm}:" + hashlib.new(algorithm, BODY + b" ").hexdigest()
    with pytest.raises(RegistryError) as caught:
        check_reference(reference, BODY)
    assert (caught.value.status, caught.value.code) == (400, "DIGEST_INVALID")
    assert hashlib.new(algorithm, BODY).hexdigest() in caught.value.message


def test_an_unregistered_algorithm_is_digest_invalid() -> None:
    with pytest.raises(RegistryError) as caught:
        check_reference("blake3:" + "ab" * 32, BODY)
    assert caught.value.code == "DIGEST_INVALID"
    assert "'blake3' is not supported" in caught.value.message


@pytest.mark.parametrize("reference", ["", "-x", "a" * 129, "a/b", "sha256:" + "AB" * 32, "tag\n"])
def test_a_bad_reference_is_manifest_invalid(reference: str) -> None:
    with pytest.raises(RegistryError) as caught:
        check_reference(reference, BODY)
    assert caught.value.code == "MANIFEST_INVALID"
    assert "is neither a tag" in caught.value.message


# --- whatever arrives -------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
HEADERS = st.sampled_from(
    [None, "", "application/json", "text/plain", *m.IMAGE_TYPES, *m.INDEX_TYPES]
)


def _parses_or_refuses(body: bytes, header: str | None) -> None:
    try:
        parsed = parse_manifest(body, header)
    except RegistryError as err:
        assert (err.status, err.code) == (400, "MANIFEST_INVALID")
        json.loads(err.body())
    else:
        assert isinstance(parsed, ImageManifest | ImageIndex)


@given(body=st.binary(max_size=200), header=HEADERS)
def test_any_bytes_parse_or_give_a_registry_error(body: bytes, header: str | None) -> None:
    _parses_or_refuses(body, header)


@given(value=JSON_VALUES, header=HEADERS)
def test_any_json_parses_or_gives_a_registry_error(value: object, header: str | None) -> None:
    _parses_or_refuses(json.dumps(value).encode(), header)


MANIFEST_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.sampled_from([2, 1, "2", 2.0, None]),
        "mediaType": st.sampled_from([*m.IMAGE_TYPES, *m.INDEX_TYPES, 7]),
        "config": JSON_VALUES | st.builds(blob, st.integers(0, 3), st.integers(-2, 10)),
        "layers": st.lists(
            JSON_VALUES | st.builds(blob, st.integers(0, 3), st.integers(-2, 10)), max_size=4
        ),
        "manifests": st.lists(
            JSON_VALUES | st.builds(blob, st.integers(0, 3), st.integers(-2, 10)), max_size=4
        ),
    },
)


@given(document=MANIFEST_FIELDS, header=HEADERS)
def test_near_manifests_parse_or_give_a_registry_error(
    document: dict[str, Any], header: str | None
) -> None:
    _parses_or_refuses(encode(document), header)


@given(layers=st.lists(st.tuples(st.integers(1, 5), st.integers(0, 10**12)), max_size=8))
def test_parsed_size_is_always_quota_measure_s(layers: list[tuple[int, int]]) -> None:
    document = image(layers=[blob(n, size) for n, size in layers])
    parsed = parse_manifest(encode(document), m.OCI_MANIFEST)
    assert isinstance(parsed, ImageManifest)
    assert parsed.manifest.size == manifest_from_dict(document).size


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"layers": [], "Layers": []}', "the keys 'layers' and 'Layers' in one object"),
        (b'{"size": 1, "size": 2}', "the keys 'size' and 'size' in one object"),
        (
            '{"size": 1, "\u017fize": 2}'.encode(),
            "'size' and '\u017fize'",
        ),  # Go folds the long s to s
        (b'{"a": {"b": {"Digest": "x", "digest": "y"}}}', "'Digest' and 'digest'"),
    ],
)
def test_keys_go_reads_as_one_field_are_refused(body: bytes, says: str) -> None:
    error = refusal(body, m.OCI_MANIFEST)
    assert error.code == "MANIFEST_INVALID"
    assert says in error.message


def test_a_manifest_smuggling_a_second_layer_list_is_refused() -> None:
    document = encode(image(layers=[blob(1, 1)]))[:-1] + b', "LAYERS": '
    body = document + encode([blob(2, 10**12)]) + b"}"
    error = refusal(body, m.OCI_MANIFEST)
    assert "'layers' and 'LAYERS'" in error.message


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (image(manifests=[]), "manifests is not a field of an image manifest"),
        (index(config=blob(0, 1)), "config is not a field of an index"),
        (index(layers=[]), "layers is not a field of an index"),
    ],
)
def test_a_body_both_image_and_index_is_refused(document: dict[str, Any], says: str) -> None:
    error = refusal(encode(document), None)
    assert error.code == "MANIFEST_INVALID"
    assert says in error.message


_CONFIG = {"mediaType": "c", "digest": "sha256:" + "b" * 64, "size": 1}


def _image(**fields: Any) -> bytes:
    body = {"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "config": _CONFIG, "layers": []}
    return json.dumps({**body, **fields}).encode()


def _doc(**fields: Any) -> bytes:
    return json.dumps({"schemaVersion": 2, **fields}).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", m.OCI_MANIFEST, "manifest is empty"),
        (b"[]", m.OCI_MANIFEST, "manifest must be a JSON object"),
        (
            b'{"a":1,"A":2}',
            m.OCI_MANIFEST,
            "manifest has the keys 'a' and 'A' in one object: the registry reads them as one"
            " field (case is ignored, the last one wins)",
        ),
        (_doc(mediaType=5), m.OCI_MANIFEST, "mediaType must be a string"),
        (
            _doc(mediaType=m.OCI_INDEX, manifests=[]),
            m.OCI_MANIFEST,
            f"mediaType '{m.OCI_INDEX}' does not match the Content-Type '{m.OCI_MANIFEST}'",
        ),
        (
            _doc(mediaType="application/vnd.docker.distribution.manifest.v1+json"),
            None,
            "Docker schema 1 manifests are not accepted: they declare no layer sizes, so no"
            " size limit could be judged; push with a current client (schema 2 or OCI)",
        ),
        (
            _doc(mediaType="text/plain"),
            None,
            "manifest type 'text/plain' is not supported: expected one of"
            f" {m.DOCKER_LIST}, {m.DOCKER_MANIFEST}, {m.OCI_INDEX}, {m.OCI_MANIFEST}",
        ),
        (
            json.dumps({"schemaVersion": "2", "mediaType": m.OCI_MANIFEST}).encode(),
            m.OCI_MANIFEST,
            "schemaVersion must be 2, got '2'",
        ),
        (_doc(mediaType=m.OCI_MANIFEST, layers=[]), m.OCI_MANIFEST, "config is required"),
        (_image(layers={}), m.OCI_MANIFEST, "layers must be a list of descriptors"),
        (
            _image(config={**_CONFIG, "mediaType": ""}),
            m.OCI_MANIFEST,
            "config.mediaType must be a non-empty string",
        ),
        (
            _image(config={**_CONFIG, "digest": "nope"}),
            m.OCI_MANIFEST,
            "config.digest must be a digest, got 'nope'",
        ),
        (
            _image(config={**_CONFIG, "size": -1}),
            m.OCI_MANIFEST,
            "config.size must be a non-negative integer, got -1",
        ),
        (
            _doc(mediaType=m.OCI_INDEX, manifests={}),
            m.OCI_INDEX,
            "manifests must be a list of descriptors",
        ),
    ],
)
def test_each_refused_manifest_says_exactly_what_is_wrong(
    body: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(RegistryError) as raised:
        m.parse_manifest(body, content_type)
    assert (raised.value.code, raised.value.message) == ("MANIFEST_INVALID", message)


def test_a_bad_reference_and_a_wrong_digest_say_exactly_what_is_wrong() -> None:
    with pytest.raises(RegistryError) as raised:
        m.check_reference("!bad", b"{}")
    assert raised.value.message == (
        "reference '!bad' is neither a tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}) nor a digest"
    )
    wrong = "sha256:" + "0" * 64
    with pytest.raises(RegistryError) as raised:
        m.check_reference(wrong, b"{}")
    actual = hashlib.sha256(b"{}").hexdigest()
    assert raised.value.message == (
        f"the manifest's digest is sha256:{actual}, not the '{wrong}' it is pushed as"
    )
