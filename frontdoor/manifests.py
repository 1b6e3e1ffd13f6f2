"""What a manifest PUT carries, read strictly: the blobs an image is made of, or its children.

The front door judges a push from the manifest alone, before the registry stores it, so the
manifest is input to be distrusted: every refusal is a RegistryError naming the field, and
no body, however malformed, raises anything else. The body is parsed once, straight into
quota.measure's ``Manifest`` (the value PushReview judges too: one rule, two doors), which
``frontdoor.pushes`` makes the push's one value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from frontdoor.distribution import digest_invalid, manifest_invalid
from quota.measure import Descriptor, Manifest
from quota.names import REGISTERED_ENCODINGS, TAG_GRAMMAR, is_digest, is_tag
from serving.httpjson import JsonLimits, brief, check_cost, media_type

MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
"""distribution's own limit on a manifest PUT (``maxManifestBodySize = 4 << 20``,
registry/handlers/manifests.go); a larger body is MANIFEST_INVALID there too."""
MANIFEST_LIMITS: Final = JsonLimits(
    # A layer descriptor (mediaType, digest, size) is some 150 bytes for its 4 values:
    # any real manifest under the size cap passes. A hostile 4 MiB body may still take
    # some 100 MiB while parsed (httpjson measured 25 bytes per byte of JSON at worst):
    # the route holds a slot of frontdoor.manifestgate for one.
    max_values=MAX_MANIFEST_BYTES // 30,
    # An index is 5 levels deep (manifests[i].platform.os.features[j]); room for annotations.
    max_depth=16,
)
MAX_BLOB_SIZE: Final = 2**63 - 1
"""A descriptor's size is a Go int64 in the image-spec (specs-go/v1 Descriptor.Size): a larger
one no registry or client can hold."""
MAX_IMAGE_SIZE: Final = 2**63 - 1
"""An image's size (config plus distinct layers) is an int64 where the Image API records it
(``dockerImageMetadata.size``, format int64): a larger sum could be stored in the registry
but never recorded, so it is refused before anything is written."""
SCHEMA_VERSION: Final = 2
"""The only schemaVersion of the four manifest types (image-spec manifest.md, index.md)."""

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES: Final = frozenset({OCI_INDEX, DOCKER_LIST})
DOCKER_SCHEMA1: Final = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
GENERIC_TYPES: Final = frozenset(
    {
        "",  # no Content-Type
        "application/json",
        "application/octet-stream",
        "application/x-www-form-urlencoded",  # curl --data's default
    }
)
"""Content-Types that name no manifest type: the body's ``mediaType`` decides."""
_OPTIONAL_MEDIA_TYPE: Final = frozenset({OCI_MANIFEST, OCI_INDEX})
"""OCI documents may leave ``mediaType`` out (it SHOULD be set); Docker's must carry it
(distribution's schema2 and manifestlist refuse one without)."""


@dataclass(frozen=True)
class ImageManifest:
    """An image: its config and layers (``manifest``, whose size is config plus each
    distinct layer once, as PushReview measures it)."""

    media_type: str
    manifest: Manifest


@dataclass(frozen=True)
class IndexEntry:
    """A child manifest of an index; ``platform`` as the index gives it, or None."""

    media_type: str
    digest: str
    size: int
    platform: Mapping[str, Any] | None


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: tuple[IndexEntry, ...]


def digest_of(body: bytes) -> str:
    """The digest the registry stores a manifest under: sha256 of its exact bytes."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def check_reference(reference: str, body: bytes) -> str | None:
    """The tag a PUT names, or None for a digest, which must be the body's own digest
    (DIGEST_INVALID otherwise, as distribution answers). A bad tag is MANIFEST_INVALID:
    the spec's closed set of codes has no tag code."""
    if is_tag(reference):
        return reference
    if not is_digest(reference):
        raise manifest_invalid(
            f"reference {brief(reference)} is neither a tag ({TAG_GRAMMAR}) nor a digest"
        )
    algorithm, _, expected = reference.partition(":")
    # The registered algorithms are the ones hashlib and the registry both compute.
    if algorithm not in REGISTERED_ENCODINGS:
        raise digest_invalid(
            f"digest algorithm {brief(algorithm)} is not supported:"
            f" use {' or '.join(REGISTERED_ENCODINGS)}"
        )
    actual = hashlib.new(algorithm, body).hexdigest()
    if actual != expected:
        raise digest_invalid(
            f"the manifest's digest is {algorithm}:{actual}, not the {brief(reference)} it is"
            " pushed as"
        )
    return None


def parse_manifest(body: bytes, content_type: str | None) -> ImageManifest | ImageIndex:
    """The manifest a PUT carries, or MANIFEST_INVALID naming the first problem.

    The Content-Type decides the type; when it names none (absent or generic), the body's
    ``mediaType`` does; when both name one, they must agree. Docker schema 1 is refused:
    it declares no layer sizes, so no size limit could be judged (and distribution 3
    dropped it).
    """
    if len(body) > MAX_MANIFEST_BYTES:
        raise manifest_invalid(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    document = _json_object(body)
    kind = _media_type(media_type(content_type), document)
    version = document.get("schemaVersion")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise manifest_invalid(f"schemaVersion must be {SCHEMA_VERSION}, got {brief(version)}")
    # A body both an image and an index could be read either way by different readers:
    # refused, as distribution and the image-spec do since CVE-2021-41190.
    if kind in IMAGE_TYPES:
        if "manifests" in document:
            raise manifest_invalid(f"manifests is not a field of an image manifest ({kind})")
        return _image(kind, document)
    for field in ("config", "layers"):
        if field in document:
            raise manifest_invalid(f"{field} is not a field of an index ({kind})")
    return _index(kind, document)


def _json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise manifest_invalid("manifest is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise manifest_invalid(f"manifest is not UTF-8 at byte {err.start}") from None
    try:
        check_cost(body, MANIFEST_LIMITS)
    except ValueError as err:
        raise manifest_invalid(f"manifest {err}") from None
    try:
        document = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_object)
    except _SameKey as err:
        raise manifest_invalid(str(err)) from None
    except (ValueError, RecursionError) as err:  # JSONDecodeError, a too-long integer
        raise manifest_invalid(f"manifest is not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise manifest_invalid("manifest must be a JSON object")
    return document


class _SameKey(Exception):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys differ even ignoring case, else _SameKey.

    The registry and the clients read manifests with Go's encoding/json, which matches a
    key to a field ignoring case and lets the last one win: with ``layers`` and ``Layers``
    in one body, we would measure one list and they would store and pull the other.
    (``casefold`` equates at least what Go's case folding does.)
    """
    seen: dict[str, str] = {}
    for key, _ in pairs:
        folded = key.casefold()
        other = seen.get(folded)
        if other is not None:
            raise _SameKey(
                f"manifest has the keys {brief(other)} and {brief(key)} in one object: the"
                " registry reads them as one field (case is ignored, the last one wins)"
            )
        seen[folded] = key
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # RFC 8259 has no NaN or Infinity


def _media_type(header: str, document: Mapping[str, Any]) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise manifest_invalid("mediaType must be a string")
    if header in GENERIC_TYPES:
        if declared is None:
            raise manifest_invalid(
                "mediaType is required when the Content-Type does not name the manifest type"
            )
        kind = declared
    else:
        if declared is not None and declared != header:
            raise manifest_invalid(
                f"mediaType {brief(declared)} does not match the Content-Type {brief(header)}"
            )
        kind = header
    if kind in DOCKER_SCHEMA1:
        raise manifest_invalid(
            "Docker schema 1 manifests are not accepted: they declare no layer sizes, so no"
            " size limit could be judged; push with a current client (schema 2 or OCI)"
        )
    if kind not in IMAGE_TYPES | INDEX_TYPES:
        raise manifest_invalid(
            f"manifest type {brief(kind)} is not supported: expected one of "
            + ", ".join(sorted(IMAGE_TYPES | INDEX_TYPES))
        )
    if declared is None and kind not in _OPTIONAL_MEDIA_TYPE:
        raise manifest_invalid(f"mediaType is required in a {kind} manifest")
    return kind


def _descriptor(value: object, path: str) -> Descriptor:
    if not isinstance(value, dict):
        raise manifest_invalid(f"{path} must be an object with mediaType, digest and size")
    media = value.get("mediaType")
    if not isinstance(media, str) or not media:
        raise manifest_invalid(f"{path}.mediaType must be a non-empty string")
    digest = value.get("digest")
    if not isinstance(digest, str) or not is_digest(digest):
        raise manifest_invalid(f"{path}.digest must be a digest, got {brief(digest)}")
    size = value.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_BLOB_SIZE:
        raise manifest_invalid(f"{path}.size must be a non-negative integer, got {brief(size)}")
    return Descriptor(digest, size, media)


def _image(kind: str, document: Mapping[str, Any]) -> ImageManifest:
    if "config" not in document:
        raise manifest_invalid("config is required")
    config = _descriptor(document["config"], "config")
    raw_layers = document.get("layers")
    if not isinstance(raw_layers, list):
        raise manifest_invalid("layers must be a list of descriptors")
    layers = tuple(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(raw_layers))
    measured = Manifest(config, layers)
    if measured.size > MAX_IMAGE_SIZE:
        raise manifest_invalid(
            f"the image's size, config plus distinct layers, is {measured.size} bytes: more"
            f" than {MAX_IMAGE_SIZE}, the most the Image API records (an int64)"
        )
    return ImageManifest(kind, measured)


def _check_platform(platform: object, path: str) -> None:
    if not isinstance(platform, dict):
        raise manifest_invalid(f"{path} must be an object")
    for key in ("architecture", "os"):  # the image-spec's REQUIRED platform fields
        if not isinstance(platform.get(key), str):
            raise manifest_invalid(f"{path}.{key} must be a string")


def _index(kind: str, document: Mapping[str, Any]) -> ImageIndex:
    raw = document.get("manifests")
    if not isinstance(raw, list):
        raise manifest_invalid("manifests must be a list of descriptors")
    entries = []
    for i, child in enumerate(raw):
        path = f"manifests[{i}]"
        blob = _descriptor(child, path)
        platform = child.get("platform")
        if platform is not None:
            _check_platform(platform, f"{path}.platform")
        entries.append(IndexEntry(blob.media_type, blob.digest, blob.size, platform))
    return ImageIndex(kind, tuple(entries))
