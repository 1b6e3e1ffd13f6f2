"""Small images made on the spot, as OCI image layout directories a real client can push.

The front door's tests and benchmarks need images whose every byte and digest they know, so
that what the registry stores and what the limits count can be checked exactly; no image
is fetched from anywhere. A layout (https://github.com/opencontainers/image-spec, file
``image-layout.md``) is ``oci-layout``, ``index.json`` and ``blobs/sha256/<hex>``; its
``index.json`` names one entry, the image or index to push, so ``crane push DIR REF``
pushes exactly that. Layer blobs are random bytes, not real tarballs: registries and
clients move and digest them without unpacking them.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAYOUT_VERSION = "1.0.0"
"""``imageLayoutVersion`` of the ``oci-layout`` file (image-spec v1.1, image-layout.md)."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
"""The OCI media types (image-spec v1.1, media-types.md)."""
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
"""Docker's image manifest V2, schema 2 media types (distribution's docs/spec/manifest-v2-2.md),
which ``docker push`` still sends."""


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str

    def as_json(self) -> dict[str, str]:
        return {"architecture": self.architecture, "os": self.os}


LINUX_AMD64 = Platform("linux", "amd64")
LINUX_ARM64 = Platform("linux", "arm64")
INDEX_PLATFORMS = (LINUX_AMD64, LINUX_ARM64)
"""The platforms of a typical multi-arch image, the children of :func:`write_index`."""


@dataclass(frozen=True)
class Descriptor:
    """What a manifest says about a blob it refers to (image-spec descriptor.md)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            body["platform"] = self.platform.as_json()
        return body


@dataclass(frozen=True)
class Image:
    """A single-platform image written to a layout: its manifest, config and layers."""

    manifest: Descriptor
    config: Descriptor
    layers: tuple[Descriptor, ...]
    platform: Platform

    @property
    def digest(self) -> str:
        """The manifest digest: what a push by digest names and ``crane digest`` prints."""
        return self.manifest.digest

    @property
    def size(self) -> int:
        """The image's size as the contract counts it (DESIGN.md, ``alauda.io/Image``
        ``max.storage``): config blob size plus each distinct layer's size, once."""
        distinct = {layer.digest: layer.size for layer in self.layers}
        return self.config.size + sum(distinct.values())


@dataclass(frozen=True)
class Index:
    """An image index written to a layout, and the images it lists."""

    manifest: Descriptor
    children: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return self.manifest.digest


def random_layers(sizes: Sequence[int], *, seed: int) -> list[bytes]:
    """Layer contents of these sizes, the same for the same seed (a test can rebuild the
    image it pushed) and different between layers and seeds (so nothing is shared by
    accident: sharing a layer is done by passing the same bytes twice)."""
    generator = random.Random(seed)
    return [generator.randbytes(size) for size in sizes]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(document: dict[str, Any]) -> bytes:
    """JSON bytes that are the same for the same document, so digests are reproducible."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _write_blob(directory: Path, data: bytes, media_type: str) -> Descriptor:
    digest = sha256_digest(data)
    path = directory / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Descriptor(media_type, digest, len(data))


def _write_layout(directory: Path, top: Descriptor) -> None:
    """``oci-layout`` and an ``index.json`` whose only entry is ``top``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": LAYOUT_VERSION}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top.as_json()]}
    (directory / "index.json").write_bytes(_canonical(index))


def _add_image(
    directory: Path, layers: Sequence[bytes], platform: Platform, *, docker: bool
) -> Image:
    layer_type = DOCKER_LAYER if docker else OCI_LAYER
    layer_descriptors = tuple(_write_blob(directory, data, layer_type) for data in layers)
    # The layers are not real tarballs, so their "uncompressed" digests are their own: a
    # client that reads diff_ids (crane's tarball export) finds one per layer.
    config = {
        **platform.as_json(),
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [d.digest for d in layer_descriptors]},
    }
    config_descriptor = _write_blob(
        directory, _canonical(config), DOCKER_CONFIG if docker else OCI_CONFIG
    )
    manifest_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config_descriptor.as_json(),
        "layers": [d.as_json() for d in layer_descriptors],
    }
    manifest_descriptor = _write_blob(directory, _canonical(manifest), manifest_type)
    return Image(manifest_descriptor, config_descriptor, layer_descriptors, platform)


def write_image(
    directory: Path,
    layers: Sequence[bytes],
    *,
    platform: Platform = LINUX_AMD64,
    docker: bool = False,
) -> Image:
    """A layout holding one single-platform image with these layer contents (see
    :func:`random_layers`); ``docker``: Docker schema 2 media types instead of OCI's."""
    image = _add_image(directory, layers, platform, docker=docker)
    _write_layout(directory, image.manifest)
    return image


def write_index(
    directory: Path,
    children: Sequence[Sequence[bytes]],
    *,
    platforms: Sequence[Platform] = INDEX_PLATFORMS,
    docker: bool = False,
) -> Index:
    """A layout holding an image index whose children have these layer contents, one
    platform each (``platforms``, in order); ``docker``: a Docker manifest list."""
    if len(children) != len(platforms):
        raise ValueError(f"{len(children)} children but {len(platforms)} platforms")
    images = tuple(
        _add_image(directory, layers, platform, docker=docker)
        for layers, platform in zip(children, platforms, strict=True)
    )
    index_type = DOCKER_MANIFEST_LIST if docker else OCI_INDEX
    index = {
        "schemaVersion": 2,
        "mediaType": index_type,
        "manifests": [
            Descriptor(i.manifest.media_type, i.digest, i.manifest.size, i.platform).as_json()
            for i in images
        ],
    }
    descriptor = _write_blob(directory, _canonical(index), index_type)
    _write_layout(directory, descriptor)
    return Index(descriptor, images)


def wrap_index(directory: Path, inner: Sequence[Descriptor]) -> Descriptor:
    """An index naming the manifests ``inner`` (indexes or images already written to the
    layout at ``directory``), written there and made the layout's one entry: an index of
    indexes, one level above them."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [d.as_json() for d in inner],
    }
    descriptor = _write_blob(directory, _canonical(index), OCI_INDEX)
    _write_layout(directory, descriptor)
    return descriptor
