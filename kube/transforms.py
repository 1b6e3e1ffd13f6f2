"""What a cache keeps of each object, as client-go's informer transforms decide it.

A cache of 20,000 Images or ImageStreams holds mostly what no rule reads: ``managedFields``
(several entries per object, written by every client), a registry's image config and
history, each history item's reference and timestamps. A cache that is only read keeps a
*projection*, the fields its readers name; a cache whose objects are written back to the
API server drops ``managedFields`` only (an update that carries none keeps the stored ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeAlias

from kube.informer import Transform
from quota.objects import Obj

Keep: TypeAlias = "bool | Mapping[str, Keep] | list[Keep]"
"""``True``: the value whole. A mapping: those keys of an object, each projected in turn.
``[keep]``: every item of a list, projected by ``keep``."""

OBJECT_METADATA: Final[Mapping[str, Keep]] = {
    "name": True,
    "namespace": True,
    "resourceVersion": True,
    "deletionTimestamp": True,
}
"""What locates an object, tells a relist what changed, and says whether it is going away;
every projection keeps it."""


def project(value: Any, keep: Keep) -> Any:
    """``value`` reduced to what ``keep`` names.

    A value of a shape ``keep`` does not expect (a string where an object was expected)
    is kept whole: the rules then see exactly what they would have seen in the original
    and judge it the same way (usually as malformed), instead of seeing it vanish.
    """
    if keep is True:
        return value
    if isinstance(keep, Mapping):
        if not isinstance(value, Mapping):
            return value
        return {key: project(value[key], inner) for key, inner in keep.items() if key in value}
    if isinstance(keep, list):
        if not isinstance(value, list):
            return value
        return [project(item, keep[0]) for item in value]
    return value


def projection(keep: Mapping[str, Keep]) -> Transform:
    """A transform keeping the object's ``metadata`` identity plus what ``keep`` names."""
    metadata = keep.get("metadata")
    full: dict[str, Keep] = dict(keep)
    full["metadata"] = {
        **OBJECT_METADATA,
        **(metadata if isinstance(metadata, Mapping) else {}),
    }

    def transform(obj: Obj) -> Obj:
        projected: Obj = project(obj, full)
        return projected

    return transform


def identity(obj: Obj) -> Obj:
    """Only the object's ``OBJECT_METADATA``: the start of a derived cached object."""
    projected: Obj = project(obj, {"metadata": OBJECT_METADATA})
    projected.setdefault("metadata", {})
    return projected


def strip_managed_fields(obj: Obj) -> Obj:
    """``obj`` without ``metadata.managedFields``: for caches whose objects are written
    back (the API server keeps the stored entries when an update carries none)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or "managedFields" not in metadata:
        return obj
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
