"""Images as the doors' caches hold them at 100,000 Images: a slotted object of packed bytes
that reads exactly as the projected dict it replaces.

Every worker of both doors caches every Image (the storage quota reads a namespace's
Images' blobs on each push, image limits read an Image's size on each ImageStream write).
As projected dicts (``serving.caches.cached_image_blobs``) a registry's Image of five
layers took 3.2 KB of each worker's cache with its index, most of it dicts, ints and
71-character digest strings; packed here, each ``sha256`` blob is 40 bytes (digest and
size) inside one ``bytes``, and the object has no ``__dict__``.

A packed Image is only kept when it reads back equal to its projection
(``compact_image``): anything unusual (another digest algorithm, a size that is not an
int64, a layer without a size, a namespace or a deletion timestamp on an Image) keeps the
projected dict, so the rules never see an Image other than the one the API server holds.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any, Final, cast

from quota.objects import Obj
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST

SHA256_PREFIX: Final = "sha256:"
SHA256_BYTES: Final = 32
"""The OCI image-spec's sha256 digest: 64 lowercase hex characters after the prefix."""
SIZE_BYTES: Final = 8
"""A blob's size packed as the Image API's int64 (``dockerImageLayers[].size``)."""
BLOB_BYTES: Final = SHA256_BYTES + SIZE_BYTES
"""One packed blob: its digest's 32 bytes, then its size, big-endian."""
MAX_SIZE: Final = 2**63 - 1
"""The largest size the Image API records (an int64)."""

REFERENCE: Final = "dockerImageReference"
CONFIG: Final = "dockerImageConfig"
LAYERS: Final = "dockerImageLayers"
MANIFESTS: Final = "dockerImageManifests"
"""The Image fields the storage quota reads (``quota.storage.IMAGE_BLOB_FIELDS``)."""
SIZE_KEY: Final = "size"
"""Key of the size ``serve`` works out once per Image (``webhook.caches.IMAGE_SIZE``)."""


def sha256_bytes(digest: str) -> bytes | None:
    """The 32 bytes of a canonical ``sha256:<64 lowercase hex>`` digest, else None."""
    hex_part = digest.removeprefix(SHA256_PREFIX)
    if len(hex_part) != 2 * SHA256_BYTES or hex_part == digest:
        return None
    try:
        raw = bytes.fromhex(hex_part)
    except ValueError:
        return None
    return raw if raw.hex() == hex_part else None


def sha256_digest(raw: bytes) -> str:
    """The ``sha256:`` digest of 32 packed bytes (``sha256_bytes`` reversed)."""
    return SHA256_PREFIX + raw.hex()


def _pack_blob(digest: object, size: object) -> bytes | None:
    """One blob packed, None when it cannot be packed without loss."""
    if not isinstance(digest, str) or type(size) is not int or not 0 <= size <= MAX_SIZE:
        return None
    raw = sha256_bytes(digest)
    return None if raw is None else raw + size.to_bytes(SIZE_BYTES, "big")


def _unpack_blob(blobs: bytes, at: int) -> tuple[str, int]:
    return (
        sha256_digest(blobs[at : at + SHA256_BYTES]),
        int.from_bytes(blobs[at + SHA256_BYTES : at + BLOB_BYTES], "big"),
    )


_ABSENT: Final[Any] = object()
"""A packed Image without the ``size`` key (the front door keeps no size)."""


class CompactImage(Mapping[str, Any]):
    """One cached Image, packed; read as the projected dict it was built from.

    Lookups rebuild only the field asked for (a push reads a few fields of a namespace's
    Images, never all fields of all Images), so the cache holds bytes and the readers
    still get plain JSON values."""

    __slots__ = (
        "_blobs",
        "_children",
        "_config",
        "_digest",
        "_name",
        "_prefix",
        "_pushed",
        "_size",
        "_version",
    )

    def __init__(
        self,
        name: str,
        version: str | None,
        reference: tuple[str, bytes] | None,
        pushed: Any,
        config: bool,
        blobs: bytes,
        children: tuple[str, ...] | None,
        size: Any = _ABSENT,
    ) -> None:
        self._name = name
        self._version = version
        # The repository part is shared by every Image of a repository: interned once.
        self._prefix = None if reference is None else sys.intern(reference[0])
        self._digest = None if reference is None else reference[1]
        self._pushed = pushed  # _ABSENT: no annotations; None: none of ours; else the mark
        self._config = config  # the first packed blob is dockerImageConfig
        self._blobs = blobs
        self._children = children
        self._size = size

    # --- the projected fields, rebuilt on demand -------------------------------------------

    def _metadata(self) -> Obj:
        meta: Obj = {"name": self._name}
        if self._version is not None:
            meta["resourceVersion"] = self._version
        if self._pushed is not _ABSENT:
            # The projection keeps an annotations object without the mark as an empty one.
            mark = {} if self._pushed is None else {ANNOTATION_PUSHED_BY_DIGEST: self._pushed}
            meta["annotations"] = mark
        return meta

    def _reference(self) -> str:
        assert self._prefix is not None and self._digest is not None
        return self._prefix + sha256_digest(self._digest)

    def _config_entry(self) -> Obj:
        digest, size = _unpack_blob(self._blobs, 0)
        return {"digest": digest, "size": size}

    def _layers(self) -> list[Obj]:
        start = BLOB_BYTES if self._config else 0
        layers: list[Obj] = []
        for at in range(start, len(self._blobs), BLOB_BYTES):
            digest, size = _unpack_blob(self._blobs, at)
            layers.append({"name": digest, "size": size})
        return layers

    def _manifests(self) -> list[Obj]:
        return [{"digest": child} for child in self._children or ()]

    def _present(self) -> list[str]:
        keys = ["metadata"]
        if self._prefix is not None:
            keys.append(REFERENCE)
        if self._config:
            keys.append(CONFIG)
        if len(self._blobs) > (BLOB_BYTES if self._config else 0):
            keys.append(LAYERS)
        if self._children is not None:
            keys.append(MANIFESTS)
        if self._size is not _ABSENT:
            keys.append(SIZE_KEY)
        return keys

    def __getitem__(self, key: str) -> Any:
        if key not in self._present():
            raise KeyError(key)
        if key == "metadata":
            return self._metadata()
        if key == REFERENCE:
            return self._reference()
        if key == CONFIG:
            return self._config_entry()
        if key == LAYERS:
            return self._layers()
        if key == MANIFESTS:
            return self._manifests()
        return self._size

    def __iter__(self) -> Iterator[str]:
        return iter(self._present())

    def __len__(self) -> int:
        return len(self._present())

    def __repr__(self) -> str:
        return f"CompactImage({dict(self)!r})"


def _reference_parts(reference: object) -> tuple[str, bytes] | bool | None:
    """``(repository part, packed digest)`` of a reference; None when there is none;
    False when it cannot be packed."""
    if reference is None:
        return None
    if not isinstance(reference, str):
        return False
    prefix, at, digest = reference.rpartition("@" + SHA256_PREFIX)
    raw = sha256_bytes(SHA256_PREFIX + digest) if at else None
    return False if raw is None else (prefix + "@", raw)


def pack(projected: Obj, *, size: Any = _ABSENT) -> CompactImage | None:
    """``projected`` (an Image reduced to ``quota.storage.IMAGE_BLOB_FIELDS`` and its
    identity) packed, or None when the packed form could not read back the same."""
    meta = projected.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return None
    version = meta.get("resourceVersion")
    annotations = meta.get("annotations", _ABSENT)
    pushed = (
        annotations.get(ANNOTATION_PUSHED_BY_DIGEST)
        if isinstance(annotations, Mapping)
        else annotations
    )
    reference = _reference_parts(projected.get(REFERENCE))
    if reference is False or not (version is None or isinstance(version, str)):
        return None
    blobs = bytearray()
    config = projected.get(CONFIG)
    if config is not None:
        packed = _pack_blob(*_fields(config, "digest"))
        if packed is None:
            return None
        blobs += packed
    for layer in _list(projected.get(LAYERS, [])):
        packed = _pack_blob(*_fields(layer, "name"))
        if packed is None:
            return None
        blobs += packed
    manifests = projected.get(MANIFESTS)
    children = None
    if manifests is not None:
        children = tuple(str(_fields(m, "digest")[0]) for m in _list(manifests))
    compact = CompactImage(
        meta["name"],
        version,
        reference if isinstance(reference, tuple) else None,
        pushed,
        config is not None,
        bytes(blobs),
        children,
        size,
    )
    # The guarantee: what is kept reads as the projection, field for field.
    expected = dict(projected)
    if size is not _ABSENT:
        expected[SIZE_KEY] = size
    return compact if dict(compact) == expected else None


def _fields(entry: object, key: str) -> tuple[object, object]:
    """``(entry[key], entry["size"])``; entries of another shape fail the read-back."""
    if not isinstance(entry, Mapping):
        return None, None
    return entry.get(key), entry.get("size")


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else [None]


def compact_image(projected: Obj, *, size: Any = _ABSENT) -> Obj:
    """``projected`` (with ``serve``'s ``size``, when given) packed, or as a dict when the
    packed form would not read the same. Typed as the informer's ``Obj``: the caches and
    the rules only read cached objects (as ``Mapping``), never write to them."""
    packed = pack(projected, size=size)
    if packed is not None:
        return cast(Obj, packed)
    return projected if size is _ABSENT else {**projected, SIZE_KEY: size}
