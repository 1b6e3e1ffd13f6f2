"""What the limits measure, from plain data: an image's size, an ImageStream's tags and images.

An image's size comes from what a push declares (``Manifest``) or from what an Image object
records (``recorded_image_size``).

ImageStreams arrive as Kubernetes objects decoded from JSON. Everything here is total over
such dicts: an absent, null or wrongly typed field counts as empty and an entry that is not
an object is ignored, so a malformed stream never crashes admission.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, TypeGuard

from quota.names import is_digest

NOT_A_DIGEST: Final = (
    "must be a digest: <algorithm>:<encoded>, sha256 64 lowercase hex digits, sha512 128"
)
"""What a descriptor's digest that breaks quota.names.is_digest is told."""


class InvalidManifest(ValueError):
    """A PushReview manifest description that cannot be measured; ``path`` names the field."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: a blob's digest, its size in bytes, and its media type where
    the manifest gives one (PushReview's body does not)."""

    digest: str
    size: int
    media_type: str = ""


@dataclass(frozen=True)
class Manifest:
    """What a push declares: an optional config blob and the layers."""

    config: Descriptor | None
    layers: tuple[Descriptor, ...] = ()

    @property
    def size(self) -> int:
        """The image size as ``alauda.io/Image`` ``storage`` measures it."""
        return image_size(self.config, self.layers)


def image_size(config: Descriptor | None, layers: Iterable[Descriptor]) -> int:
    """Config blob size plus the size of each distinct layer digest, counted once.

    The config is counted as the config even when a layer has the same digest. Should one
    digest be declared with different sizes, the largest is counted, so misdeclaring a
    repeated layer cannot shrink the result.
    """
    by_digest: dict[str, int] = {}
    for layer in layers:
        by_digest[layer.digest] = max(layer.size, by_digest.get(layer.digest, 0))
    return (config.size if config is not None else 0) + sum(by_digest.values())


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def recorded_image_size(image: Mapping[str, Any] | None) -> int | None:
    """Config plus distinct layers when the Image lists them, else ``dockerImageMetadata.size``;
    None when the Image records no usable size (then no size limit can be checked)."""
    if not isinstance(image, Mapping):
        return None
    layers_raw = image.get("dockerImageLayers")
    if isinstance(layers_raw, list) and layers_raw:
        layers: list[Descriptor] = []
        for layer in layers_raw:
            if not isinstance(layer, Mapping):
                return None
            name, size = layer.get("name"), _int(layer.get("size"))
            if not isinstance(name, str) or size is None:
                return None
            layers.append(Descriptor(name, size))
        config_raw = image.get("dockerImageConfig")
        config = None
        if isinstance(config_raw, Mapping):
            digest, size = config_raw.get("digest"), _int(config_raw.get("size"))
            if isinstance(digest, str) and size is not None:
                config = Descriptor(digest, size)
        return image_size(config, layers)
    metadata = image.get("dockerImageMetadata")
    if isinstance(metadata, Mapping):
        return _int(metadata.get("size"))
    return None


def _descriptor(value: object, path: str) -> Descriptor:
    if not isinstance(value, Mapping):
        raise InvalidManifest(path, "must be an object with digest and size")
    digest = value.get("digest")
    if not isinstance(digest, str) or not digest:
        raise InvalidManifest(f"{path}.digest", "must be a non-empty string")
    if not is_digest(digest):
        # The front door's rule: both doors accept the same digests, and so does the registry.
        raise InvalidManifest(f"{path}.digest", NOT_A_DIGEST)
    size = value.get("size")
    if isinstance(size, float) and size.is_integer():
        # JSON has one number type: 1469.0 is the integer 1469, as JSON Schema counts it.
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int):
        raise InvalidManifest(f"{path}.size", "must be an integer")
    if size < 0:
        raise InvalidManifest(f"{path}.size", "must be greater than or equal to 0")
    return Descriptor(digest, size)


def manifest_from_dict(spec: Mapping[str, Any], path: str = "spec") -> Manifest:
    """Read ``config`` and ``layers`` of a PushReview spec; strict, since the body is input.

    ``config`` may be absent or null (an image index has none), ``layers`` absent, null or
    a list. Raises InvalidManifest naming the offending field under ``path``.
    """
    raw_config = spec.get("config")
    config = None if raw_config is None else _descriptor(raw_config, f"{path}.config")
    raw_layers = spec.get("layers")
    if raw_layers is None:
        raw_layers = []
    if not isinstance(raw_layers, list):
        raise InvalidManifest(f"{path}.layers", "must be a list")
    layers = tuple(
        _descriptor(layer, f"{path}.layers[{index}]") for index, layer in enumerate(raw_layers)
    )
    return Manifest(config, layers)


class StreamCounts(NamedTuple):
    """The two counts ``alauda.io/ImageStream`` limits bound."""

    tags: int
    images: int


@dataclass(frozen=True)
class StreamUsage:
    """The distinct tag names and image digests of one ImageStream: what its limits count,
    measured once (by the caches when they store a stream, by admission from the objects
    under review) and handed to the rules as it is."""

    tags: frozenset[str] = frozenset()
    images: frozenset[str] = frozenset()

    @property
    def counts(self) -> StreamCounts:
        return StreamCounts(len(self.tags), len(self.images))

    def with_push(self, tag: str | None, digest: str | None) -> StreamUsage:
        """This usage plus a pushed tag (None or empty: a push by digest) and image."""
        tags = self.tags | {tag} if tag else self.tags
        images = self.images | {digest} if digest else self.images
        return StreamUsage(tags, images)


def _is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    """A JSON object: a dict (what JSON decodes to, checked first as the ABC check costs
    more than the rest of a loop step) or any other Mapping."""
    return type(value) is dict or isinstance(value, Mapping)


def _dicts(value: object) -> list[Mapping[str, Any]]:
    """The object entries of a list; anything else (null, a string, a map) has none."""
    if not isinstance(value, list):
        return []
    return [entry for entry in value if _is_object(entry)]


def _section(obj: object, key: str) -> Mapping[str, Any]:
    value = obj.get(key) if _is_object(obj) else None
    return value if _is_object(value) else {}


def _non_empty_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value != ""


def stream_tag_names(stream: Mapping[str, Any] | None) -> frozenset[str]:
    """Distinct tag names: ``spec.tags[*].name`` together with ``status.tags[*].tag``.

    Empty and non-string names are not names and are not counted.
    """
    spec_tags = _dicts(_section(stream, "spec").get("tags"))
    status_tags = _dicts(_section(stream, "status").get("tags"))
    names = {name for tag in spec_tags if _non_empty_str(name := tag.get("name"))}
    names.update(name for tag in status_tags if _non_empty_str(name := tag.get("tag")))
    return frozenset(names)


def stream_image_digests(stream: Mapping[str, Any] | None) -> frozenset[str]:
    """Distinct non-empty digests in ``status.tags[*].items[*].image``: the whole history."""
    return frozenset(
        digest
        for tag in _dicts(_section(stream, "status").get("tags"))
        for item in _dicts(tag.get("items"))
        if _non_empty_str(digest := item.get("image"))
    )


def stream_usage(stream: Mapping[str, Any] | None) -> StreamUsage:
    """Tags and images of a stream; None (no stream yet) has none."""
    return StreamUsage(stream_tag_names(stream), stream_image_digests(stream))
