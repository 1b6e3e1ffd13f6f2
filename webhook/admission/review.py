"""Strict ``admission.k8s.io/v1`` AdmissionReview parsing and response building.

Pure functions over bytes and dicts, so every malformed shape is unit-testable without a
server. kube-apiserver only ever sends well-formed reviews; everything here that rejects
input protects us from other callers (probes, scanners, misconfigured proxies).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from quota.decision import INVALID, Decision
from serving.httpjson import JsonLimits, brief, typed_json_object

ADMISSION_API_VERSION = "admission.k8s.io/v1"
ADMISSION_KIND = "AdmissionReview"
_OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})

ETCD_MAX_OBJECT_BYTES: Final = 1536 * 1024
"""etcd's default ``--max-request-bytes``: the API server stores no bigger object."""
DENSEST_OBJECT_BYTES_PER_VALUE: Final = 16
"""The fewest JSON bytes per value of the objects we admit, measured (test_review.py): an
ImageStream of one-image tags, whose managedFields name every field of every spec tag."""
REVIEW_LIMITS: Final = JsonLimits(
    # object and oldObject as big as etcd stores at that density make 196,608 values;
    # half as much again for margin (294,912). Python holds that in some 30 MiB.
    max_values=3 * ETCD_MAX_OBJECT_BYTES // DENSEST_OBJECT_BYTES_PER_VALUE,
    # The deepest review measured is 12 levels (an ImageStream's managedFields, inside
    # object, inside request); json.loads itself would give up near 1,000.
    max_depth=64,
)


class BadReview(ValueError):
    """The request body is not a valid AdmissionReview; the message says why."""


@dataclass(frozen=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str


@dataclass(frozen=True)
class AdmissionRequest:
    """The parts of ``AdmissionReview.request`` the handlers use, already type-checked."""

    uid: str
    kind: GroupVersionKind
    resource: str
    sub_resource: str
    operation: str
    namespace: str
    name: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    dry_run: bool
    username: str
    api_version: str = ADMISSION_API_VERSION


def _str_field(obj: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise BadReview(f"{where}.{key} is required")
        return ""
    if not isinstance(value, str):
        raise BadReview(f"{where}.{key} must be a string")
    if required and not value:
        raise BadReview(f"{where}.{key} must not be empty")
    return value


def _object_field(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadReview(f"request.{key} must be an object or null")
    return value


def _gvk(request: Mapping[str, Any]) -> GroupVersionKind:
    kind = request.get("kind")
    if not isinstance(kind, dict):
        raise BadReview("request.kind must be an object with group, version and kind")
    return GroupVersionKind(
        group=_str_field(kind, "group", "request.kind", required=False),
        version=_str_field(kind, "version", "request.kind", required=True),
        kind=_str_field(kind, "kind", "request.kind", required=True),
    )


def _resource(request: Mapping[str, Any]) -> str:
    resource = request.get("resource")
    if not isinstance(resource, dict):
        raise BadReview("request.resource must be an object with group, version and resource")
    return _str_field(resource, "resource", "request.resource", required=True)


def _username(request: Mapping[str, Any]) -> str:
    user = request.get("userInfo")
    if user is None:
        return ""
    if not isinstance(user, dict):
        raise BadReview("request.userInfo must be an object")
    return _str_field(user, "username", "request.userInfo", required=False)


def parse_review(body: bytes, content_type: str | None) -> AdmissionRequest:
    """Parse and validate a request body; raise :class:`BadReview` naming the first problem."""
    review = typed_json_object(
        body,
        content_type,
        api_version=ADMISSION_API_VERSION,
        kind=ADMISSION_KIND,
        error=BadReview,
        limits=REVIEW_LIMITS,
    )
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("request is required and must be an object")
    uid = _str_field(request, "uid", "request", required=True)
    operation = _str_field(request, "operation", "request", required=True)
    if operation not in _OPERATIONS:
        raise BadReview(f"request.operation {brief(operation)} is not one of {sorted(_OPERATIONS)}")
    dry_run = request.get("dryRun", False)
    if dry_run is None:
        dry_run = False
    if not isinstance(dry_run, bool):
        raise BadReview("request.dryRun must be a boolean")
    return AdmissionRequest(
        uid=uid,
        kind=_gvk(request),
        resource=_resource(request),
        sub_resource=_str_field(request, "subResource", "request", required=False),
        operation=operation,
        namespace=_str_field(request, "namespace", "request", required=False),
        name=_str_field(request, "name", "request", required=False),
        object=_object_field(request, "object"),
        old_object=_object_field(request, "oldObject"),
        dry_run=dry_run,
        username=_username(request),
    )


def render_response(
    request: AdmissionRequest, decision: Decision, *, mutating: bool
) -> dict[str, Any]:
    """Build the AdmissionReview response; validating endpoints never carry a patch."""
    if decision.patch and not mutating:
        raise ValueError("a validating webhook must not return a patch")
    response: dict[str, Any] = {"uid": request.uid, "allowed": decision.allowed}
    if decision.allowed and decision.patch:
        encoded = orjson.dumps(list(decision.patch))
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(encoded).decode("ascii")
    if not decision.allowed:
        response["status"] = {
            "code": decision.code,
            "reason": decision.reason,
            "message": decision.message,
        }
        # The API server hands this Status to the writer as it is (only the message gains
        # its "admission webhook ... denied the request: " prefix), so a writer such as the
        # front door learns the rule and the contract's message from it. Not on Invalid:
        # kubectl prints an Invalid Status from its causes, field by field, in place of
        # the message that names the LimitRange or ResourceQuota.
        if decision.cause is not None and decision.reason != INVALID:
            cause = {"reason": str(decision.cause), "message": decision.message}
            response["status"]["details"] = {"causes": [cause]}
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    return {"apiVersion": request.api_version, "kind": ADMISSION_KIND, "response": response}
