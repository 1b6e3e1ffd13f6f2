"""``/mutate/serviceaccounts``: point every ServiceAccount at its managed pull secret."""

from __future__ import annotations

from typing import Any

from jsonpointer import JsonPointer

from webhook.admission import AdmissionRequest, Decision
from webhook.pullsecrets.names import ANNOTATION_PULL_SECRET_REF, secret_name_for


def annotation_patch(sa: dict[str, Any]) -> list[dict[str, Any]]:
    """Set the pull-secret-ref annotation to the managed Secret's name."""
    metadata = sa.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return []
    secret = secret_name_for(name)
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict):
        return [
            {
                "op": "add",
                "path": "/metadata/annotations",
                "value": {ANNOTATION_PULL_SECRET_REF: secret},
            }
        ]
    if annotations.get(ANNOTATION_PULL_SECRET_REF) == secret:
        return []
    path = JsonPointer.from_parts(["metadata", "annotations", ANNOTATION_PULL_SECRET_REF]).path
    return [{"op": "add", "path": path, "value": secret}]


def mutate(request: AdmissionRequest) -> Decision:
    if request.object is None:
        return Decision.allow()
    return Decision.allow(patch=annotation_patch(request.object))
