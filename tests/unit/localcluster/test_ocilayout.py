"""Image layouts the tests push: every digest and size checked against the files written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from localcluster import ocilayout
from localcluster.ocilayout import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    LINUX_AMD64,
    LINUX_ARM64,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    random_layers,
    write_image,
    write_index,
)


def blob(directory: Path, digest: str) -> bytes:
    algorithm, hex_digest = digest.split(":")
    assert algorithm == "sha256"
    return (directory / "blobs" / "sha256" / hex_digest).read_bytes()


def document(directory: Path, digest: str) -> Any:
    return json.loads(blob(directory, digest))


def top_entry(directory: Path) -> dict[str, Any]:
    index = json.loads((directory / "index.json").read_text())
    assert index["schemaVersion"] == 2
    [entry] = index["manifests"]
    assert isinstance(entry, dict)
    return entry


def test_every_blob_is_named_by_its_own_digest(tmp_path: Path) -> None:
    write_index(tmp_path, [random_layers([10, 20], seed=1), random_layers([30], seed=2)])
    blobs = list((tmp_path / "blobs" / "sha256").iterdir())
    assert len(blobs) == 2 + 2 + 3 + 1  # two configs, two manifests, three layers, the index
    for path in blobs:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def test_layout_marker_names_the_spec_version(tmp_path: Path) -> None:
    write_image(tmp_path, random_layers([1], seed=0))
    marker = json.loads((tmp_path / "oci-layout").read_text())
    assert marker == {"imageLayoutVersion": "1.0.0"}


def test_image_manifest_lists_config_and_layers_with_their_sizes(tmp_path: Path) -> None:
    layers = random_layers([100, 2000, 0], seed=7)
    image = write_image(tmp_path, layers)

    assert top_entry(tmp_path) == {
        "mediaType": OCI_MANIFEST,
        "digest": image.digest,
        "size": len(blob(tmp_path, image.digest)),
    }
    manifest = document(tmp_path, image.digest)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"] == {
        "mediaType": OCI_CONFIG,
        "digest": image.config.digest,
        "size": len(blob(tmp_path, image.config.digest)),
    }
    assert [blob(tmp_path, entry["digest"]) for entry in manifest["layers"]] == layers
    assert [entry["size"] for entry in manifest["layers"]] == [100, 2000, 0]
    assert {entry["mediaType"] for entry in manifest["layers"]} == {OCI_LAYER}
    assert [d.as_json() for d in image.layers] == manifest["layers"]


def test_config_names_the_platform_and_one_diff_id_per_layer(tmp_path: Path) -> None:
    image = write_image(tmp_path, random_layers([5, 6], seed=3), platform=LINUX_ARM64)
    config = document(tmp_path, image.config.digest)
    assert (config["os"], config["architecture"]) == ("linux", "arm64")
    assert config["rootfs"]["diff_ids"] == [layer.digest for layer in image.layers]


def test_size_counts_config_and_each_distinct_layer_once(tmp_path: Path) -> None:
    shared, other = random_layers([1000, 300], seed=4)
    image = write_image(tmp_path, [shared, other, shared])

    config_size = len(blob(tmp_path, image.config.digest))
    assert image.size == config_size + 1000 + 300
    assert len(image.layers) == 3


def test_same_seed_same_image_and_another_seed_another(tmp_path: Path) -> None:
    first = write_image(tmp_path / "a", random_layers([64, 64], seed=5))
    again = write_image(tmp_path / "b", random_layers([64, 64], seed=5))
    other = write_image(tmp_path / "c", random_layers([64, 64], seed=6))
    assert first == again
    assert other.digest != first.digest
    assert first.layers[0].digest != first.layers[1].digest


def test_index_lists_each_child_with_its_platform(tmp_path: Path) -> None:
    index = write_index(tmp_path, [random_layers([10], seed=1), random_layers([20], seed=2)])

    assert top_entry(tmp_path) == {
        "mediaType": OCI_INDEX,
        "digest": index.digest,
        "size": len(blob(tmp_path, index.digest)),
    }
    body = document(tmp_path, index.digest)
    assert body["mediaType"] == OCI_INDEX
    assert [(c.platform, c.digest) for c in index.children] == [
        (LINUX_AMD64, body["manifests"][0]["digest"]),
        (LINUX_ARM64, body["manifests"][1]["digest"]),
    ]
    for entry, child in zip(body["manifests"], index.children, strict=True):
        assert entry["platform"] == child.platform.as_json()
        assert entry["size"] == len(blob(tmp_path, child.digest))
        assert document(tmp_path, child.digest)["layers"][0]["size"] == child.layers[0].size
    assert [c.size - c.config.size for c in index.children] == [10, 20]


def test_docker_media_types_throughout(tmp_path: Path) -> None:
    index = write_index(tmp_path, [random_layers([1], seed=1)] * 2, docker=True)

    assert top_entry(tmp_path)["mediaType"] == DOCKER_MANIFEST_LIST
    assert document(tmp_path, index.digest)["mediaType"] == DOCKER_MANIFEST_LIST
    child = document(tmp_path, index.children[0].digest)
    assert child["mediaType"] == DOCKER_MANIFEST
    assert child["config"]["mediaType"] == DOCKER_CONFIG
    assert child["layers"][0]["mediaType"] == DOCKER_LAYER


def test_index_needs_one_platform_per_child(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3 children but 2 platforms"):
        write_index(tmp_path, [[b"a"], [b"b"], [b"c"]])


def test_sha256_digest_is_prefixed_hex() -> None:
    assert ocilayout.sha256_digest(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
