"""JSON Patch operations that add (or take back) the managed pull secret on a ServiceAccount.

The same operations serve the mutating webhook (patch of the object under admission) and the
reconciler (``application/json-patch+json`` against the live object).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from jsonpointer import JsonPointer

from quota.pullsecrets.names import (
    ANNOTATION_PULL_SECRET_REF,
    OPT_OUT_KEY,
    OPT_OUT_VALUE,
    secret_name_for,
)

Operation = dict[str, Any]

_REF_PATH = JsonPointer.from_parts(["metadata", "annotations", ANNOTATION_PULL_SECRET_REF]).path


def _is_ours(entry: object, secret_name: str) -> bool:
    return isinstance(entry, Mapping) and entry.get("name") == secret_name


def _remove_entries(entries: Sequence[Any], indices: Sequence[int]) -> list[Operation]:
    """Remove by index, highest first so earlier indices stay valid.

    Each remove is preceded by a ``test`` of the exact entry: if the list changed since it was
    read (reconciler patching the live object), the patch fails instead of removing a
    neighbour.
    """
    ops: list[Operation] = []
    for i in sorted(indices, reverse=True):
        path = f"/imagePullSecrets/{i}"
        ops.append({"op": "test", "path": path, "value": copy.deepcopy(entries[i])})
        ops.append({"op": "remove", "path": path})
    return ops


def add_pull_secret_patch(sa: Mapping[str, Any], secret_name: str) -> list[Operation]:
    """Ops making ``imagePullSecrets`` hold ``{name: secret_name}`` once, plus the ref annotation.

    The entry is appended when missing; if present, the first occurrence stays where it is and
    duplicates are removed. Other entries (including malformed ones) are untouched and keep
    their order. Returns [] when the ServiceAccount is already as wanted.
    """
    if not secret_name:
        raise ValueError("secret name must not be empty")
    ops: list[Operation] = []
    entries = sa.get("imagePullSecrets")
    if not isinstance(entries, list):
        # Absent, null or not a list: "add" on an object member creates or replaces it.
        ops.append({"op": "add", "path": "/imagePullSecrets", "value": [{"name": secret_name}]})
    else:
        ours = [i for i, entry in enumerate(entries) if _is_ours(entry, secret_name)]
        if ours:
            ops += _remove_entries(entries, ours[1:])
        else:
            ops.append({"op": "add", "path": "/imagePullSecrets/-", "value": {"name": secret_name}})

    metadata = sa.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(metadata, Mapping):
        value: Any = {"annotations": {ANNOTATION_PULL_SECRET_REF: secret_name}}
        ops.append({"op": "add", "path": "/metadata", "value": value})
    elif not isinstance(annotations, Mapping):
        value = {ANNOTATION_PULL_SECRET_REF: secret_name}
        ops.append({"op": "add", "path": "/metadata/annotations", "value": value})
    elif annotations.get(ANNOTATION_PULL_SECRET_REF) != secret_name:
        ops.append({"op": "add", "path": _REF_PATH, "value": secret_name})
    return ops


def remove_pull_secret_patch(sa: Mapping[str, Any], *secret_names: str) -> list[Operation]:
    """Ops taking back what :func:`add_pull_secret_patch` added (for opt-out).

    Removes every ``{name: ...}`` entry for one of ``secret_names`` (the plain name, and a
    fallback's while one is used) and the ref annotation, nothing else. Emptied containers
    are left as ``[]``/``{}``; the API server drops them (``omitempty``), so the stored
    object matches one that never had them. Returns [] when there is nothing to remove.
    """
    ops: list[Operation] = []
    entries = sa.get("imagePullSecrets")
    if isinstance(entries, list):
        ours = [
            i
            for i, entry in enumerate(entries)
            if any(_is_ours(entry, name) for name in secret_names)
        ]
        ops += _remove_entries(entries, ours)
    metadata = sa.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if isinstance(annotations, Mapping) and ANNOTATION_PULL_SECRET_REF in annotations:
        ops.append({"op": "remove", "path": _REF_PATH})
    return ops


def retire_pull_secret_patch(sa: Mapping[str, Any], secret_name: str) -> list[Operation]:
    """Ops removing every ``{name: secret_name}`` entry of a Secret the service no longer
    manages under that name; the ref annotation, which names the current one, stays."""
    entries = sa.get("imagePullSecrets")
    if not isinstance(entries, list):
        return []
    return _remove_entries(entries, [i for i, e in enumerate(entries) if _is_ours(e, secret_name)])


def replace_pull_secret_patch(
    sa: Mapping[str, Any], old_name: str, new_name: str
) -> list[Operation]:
    """Ops moving the SA from ``old_name`` to ``new_name`` (entries and ref annotation) in one
    patch: the mutating webhook sees every update, and between two patches it would see the
    ref annotation still naming ``old_name`` and add that back."""
    ops = retire_pull_secret_patch(sa, old_name)
    entries = sa.get("imagePullSecrets")
    if isinstance(entries, list):  # what the retire ops leave, for the indices that follow
        sa = {**sa, "imagePullSecrets": [e for e in entries if not _is_ours(e, old_name)]}
    return ops + add_pull_secret_patch(sa, new_name)


def guard_resource_version(ops: list[Operation], obj: Mapping[str, Any]) -> list[Operation]:
    """Prefix ``ops`` with a ``test`` of ``metadata.resourceVersion`` (optimistic concurrency).

    For the reconciler: a JSON Patch computed from a stale read then fails with a conflict
    instead of clobbering a concurrent write. Empty ``ops`` stay empty; without a
    resourceVersion the ops are returned unchanged.
    """
    metadata = obj.get("metadata")
    rv = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    if not ops or not isinstance(rv, str) or not rv:
        return list(ops)
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}, *ops]


def _opts_out(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() == OPT_OUT_VALUE


def is_opted_out(sa: Mapping[str, Any], namespace_labels: Mapping[str, str] | None) -> bool:
    """True when the namespace label or the SA annotation ``OPT_OUT_KEY`` is ``"false"``.

    Either one opts out (an SA cannot opt back in inside an opted-out namespace). The value is
    compared case-insensitively: erring towards "leave it alone" is the safe side.
    """
    if namespace_labels and _opts_out(namespace_labels.get(OPT_OUT_KEY)):
        return True
    metadata = sa.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return isinstance(annotations, Mapping) and _opts_out(annotations.get(OPT_OUT_KEY))


def serviceaccount_mutation(
    sa: Mapping[str, Any], namespace_labels: Mapping[str, str] | None
) -> list[Operation]:
    """The ``/mutate/serviceaccounts`` patch: add ops, or [] when opted out or unnamed.

    An SA created with only ``generateName`` may reach admission without a name; then there is
    no deterministic Secret name yet and the reconciler heals it later.
    """
    metadata = sa.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name or is_opted_out(sa, namespace_labels):
        return []
    return add_pull_secret_patch(sa, secret_name_for(name))
