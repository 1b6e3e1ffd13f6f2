"""Default registry rights in a namespace, OpenShift's ``system:image-pullers`` and
``system:image-builders``: which two RoleBindings a namespace should hold, and what to do
with the one it has.

A binding is ours when it carries the managed-by label; it is unchanged when its roleRef
and subjects still hash to the value we recorded in ``ANNOTATION_SPEC_HASH`` when we wrote
it. The decision is read from the object alone, so it survives restarts and failovers,
and needs no memory of past writes:

1. no binding under the name: create it;
2. not ours (no label: a user's binding under our name, or one a user took over by
   dropping the label), or ours but its roleRef or subjects no longer hash to what we
   recorded (a user edited them): leave it alone, forever;
3. ours and unchanged, but not what this version wants (an older version wrote it):
   the same roleRef is updated in place; another roleRef is deleted and created again,
   because the API server refuses any change to ``roleRef`` (it is immutable);
4. the namespace opted out (``OPT_OUT_KEY: "false"``): ours and unchanged is deleted,
   anything else is the user's and stays.

The hash is of the canonical form (subjects' defaulted ``apiGroup`` filled in, order kept),
so the API server's defaulting never reads as a user's edit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from quota.objects import Obj, mapping, metadata
from quota.pullsecrets.names import LABEL_MANAGED_BY, LABEL_MANAGED_BY_VALUE

RBAC_GROUP: Final = "rbac.authorization.k8s.io"
PULLERS: Final = "registry-image-pullers"
"""RoleBinding of ``registry-viewer`` for every ServiceAccount of the namespace (pull)."""
BUILDERS: Final = "registry-image-builders"
"""RoleBinding of ``registry-editor`` for the namespace's ``builder`` (pull and push)."""
VIEWER_ROLE: Final = "registry-viewer"
EDITOR_ROLE: Final = "registry-editor"
BUILDER_ACCOUNT: Final = "builder"
"""OpenShift's build ServiceAccount name: what pushes a namespace's images."""
BINDING_NAMES: Final = (PULLERS, BUILDERS)

OPT_OUT_KEY: Final = "image.alauda.io/default-rolebindings"
"""Namespace label; the value ``"false"`` opts out (DESIGN.md)."""
OPT_OUT_VALUE: Final = "false"
ANNOTATION_SPEC_HASH: Final = "image.alauda.io/rolebinding-spec-hash"
"""sha256 of the roleRef and subjects we wrote: differs once a user edits either."""
MANAGED_BINDING_SELECTOR: Final = f"{LABEL_MANAGED_BY}={LABEL_MANAGED_BY_VALUE}"

_DEFAULT_SUBJECT_GROUP: Final = {"ServiceAccount": "", "User": RBAC_GROUP, "Group": RBAC_GROUP}
"""The apiGroup the API server fills in for each subject kind (rbac/v1 defaults)."""


class Action(StrEnum):
    """What to do with one binding name in one namespace."""

    NONE = "binding is as wanted"
    CREATE = "binding does not exist"
    UPDATE = "binding is ours and unchanged, with other subjects than wanted"
    RECREATE = "binding is ours and unchanged, with another roleRef (immutable)"
    DELETE = "namespace opted out: our unchanged binding goes"
    LEAVE_FOREIGN = "binding is not ours: left alone"
    LEAVE_EDITED = "binding was changed by a user: left alone"


def opted_out(namespace_labels: Mapping[str, Any]) -> bool:
    return namespace_labels.get(OPT_OUT_KEY) == OPT_OUT_VALUE


def _subjects(namespace: str, name: str) -> list[Obj]:
    if name == PULLERS:
        group = f"system:serviceaccounts:{namespace}"
        return [{"kind": "Group", "apiGroup": RBAC_GROUP, "name": group}]
    return [{"kind": "ServiceAccount", "name": BUILDER_ACCOUNT, "namespace": namespace}]


def _role_ref(name: str) -> Obj:
    role = VIEWER_ROLE if name == PULLERS else EDITOR_ROLE
    return {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role}


def spec_hash(role_ref: object, subjects: object) -> str:
    """The hash of a binding's roleRef and subjects in canonical form."""
    canonical = {
        "roleRef": _canonical_ref(role_ref),
        "subjects": [_canonical_subject(mapping(s)) for s in _list(subjects)],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical_ref(role_ref: object) -> Obj:
    ref = mapping(role_ref)
    return {k: ref.get(k, "") for k in ("apiGroup", "kind", "name")}


def _canonical_subject(subject: Mapping[str, Any]) -> Obj:
    kind = subject.get("kind", "")
    group = subject.get("apiGroup") or _DEFAULT_SUBJECT_GROUP.get(kind, "")
    return {
        "kind": kind,
        "apiGroup": group,
        "name": subject.get("name", ""),
        "namespace": subject.get("namespace") or "",
    }


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def desired_binding(namespace: str, name: str) -> Obj:
    """The RoleBinding ``name`` (one of ``BINDING_NAMES``) as we write it in ``namespace``."""
    if name not in BINDING_NAMES:
        raise ValueError(f"not a default binding: {name}")
    role_ref, subjects = _role_ref(name), _subjects(namespace, name)
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE},
            "annotations": {ANNOTATION_SPEC_HASH: spec_hash(role_ref, subjects)},
        },
        "roleRef": role_ref,
        "subjects": subjects,
    }


def is_ours(binding: Mapping[str, Any]) -> bool:
    return mapping(metadata(binding).get("labels")).get(LABEL_MANAGED_BY) == LABEL_MANAGED_BY_VALUE


def is_unchanged(binding: Mapping[str, Any]) -> bool:
    """Ours, and its roleRef and subjects are still what we recorded writing."""
    recorded = mapping(metadata(binding).get("annotations")).get(ANNOTATION_SPEC_HASH)
    return is_ours(binding) and recorded == spec_hash(
        binding.get("roleRef"), binding.get("subjects")
    )


@dataclass(frozen=True)
class Plan:
    name: str
    action: Action
    desired: Obj
    """What to write for CREATE, UPDATE and RECREATE (update carries no resourceVersion:
    the caller adds the one it read)."""


def plan(namespace: str, name: str, existing: Mapping[str, Any] | None, *, opt_out: bool) -> Plan:
    """What to do with binding ``name`` in ``namespace``, given what exists under it."""
    desired = desired_binding(namespace, name)
    if existing is None:
        return Plan(name, Action.NONE if opt_out else Action.CREATE, desired)
    if not is_ours(existing):
        return Plan(name, Action.LEAVE_FOREIGN, desired)
    if not is_unchanged(existing):
        return Plan(name, Action.LEAVE_EDITED, desired)
    if opt_out:
        return Plan(name, Action.DELETE, desired)
    want = spec_hash(desired["roleRef"], desired["subjects"])
    if spec_hash(existing.get("roleRef"), existing.get("subjects")) == want:
        return Plan(name, Action.NONE, desired)
    if _canonical_ref(existing.get("roleRef")) != _canonical_ref(desired["roleRef"]):
        return Plan(name, Action.RECREATE, desired)
    return Plan(name, Action.UPDATE, desired)
