"""PushReview bodies: strict parsing into plain data, and the answer's shape."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from quota.decision import Decision
from quota.measure import InvalidManifest, Manifest, manifest_from_dict
from webhook.httpjson import JsonLimits, brief, typed_json_object

API_VERSION = "image.alauda.io/v1"
KIND = "PushReview"

MAX_BODY_BYTES: Final = 1024 * 1024
"""A manifest has at most a few hundred layers: a megabyte is generous."""
LAYER_BYTES_PER_VALUE: Final = 30
"""A layer descriptor, ``{"digest":"sha256:<64 hex>","size":2811478}``, is 90 bytes for
its 3 values: the densest real content of a PushReview (test_review.py measures it)."""
PUSH_LIMITS: Final = JsonLimits(
    # Any body under the size cap made of layer descriptors passes (34,952 values; 500
    # layers are 2,014). Python holds that in some 3 MiB.
    max_values=MAX_BODY_BYTES // LAYER_BYTES_PER_VALUE,
    # A PushReview is 4 levels deep (spec.layers[i].digest); room for annotations.
    max_depth=16,
)

# The grammars of a push's names, public so that the registry's front door
# (webhook.frontdoor) judges the same names by the same rules. All four are used with
# fullmatch: `$` alone also matches before a final newline.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""A namespace name (Kubernetes DNS-1123 label)."""
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
"""An ImageStream name (Kubernetes DNS-1123 subdomain), up to MAX_NAME_LENGTH."""
MAX_NAME_LENGTH: Final = 253
"""Kubernetes' limit on a DNS-1123 subdomain, so on an ImageStream's name."""
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
"""The OCI distribution spec's tag grammar."""
DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
"""The OCI image-spec digest grammar (any algorithm)."""


class BadPushReview(ValueError):
    """The body is not a valid PushReview; the message names the field."""


@dataclass(frozen=True)
class PushRequest:
    namespace: str
    repository: str
    tag: str | None
    digest: str
    media_type: str
    manifest: Manifest
    body: dict[str, Any]


def _string(spec: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = spec.get(key)
    if value is None or (value == "" and not required):
        if required:
            raise BadPushReview(f"spec.{key} is required")
        return None
    if not isinstance(value, str) or not value:
        raise BadPushReview(f"spec.{key} must be a non-empty string")
    return value


def parse_push_review(body: bytes, content_type: str | None) -> PushRequest:
    review = typed_json_object(
        body,
        content_type,
        api_version=API_VERSION,
        kind=KIND,
        error=BadPushReview,
        limits=PUSH_LIMITS,
    )
    spec = review.get("spec")
    if not isinstance(spec, dict):
        raise BadPushReview("spec is required and must be an object")
    namespace = _string(spec, "namespace", required=True) or ""
    if not DNS_LABEL.fullmatch(namespace):
        raise BadPushReview(f"spec.namespace {brief(namespace)} is not a valid namespace name")
    repository = _string(spec, "repository", required=True) or ""
    if len(repository) > MAX_NAME_LENGTH or not DNS_SUBDOMAIN.fullmatch(repository):
        raise BadPushReview(f"spec.repository {brief(repository)} is not a valid ImageStream name")
    tag = _string(spec, "tag", required=False)
    if tag is not None and not TAG.fullmatch(tag):
        raise BadPushReview(f"spec.tag {brief(tag)} is not a valid tag")
    digest = _string(spec, "digest", required=True) or ""
    if not DIGEST.fullmatch(digest):
        raise BadPushReview(f"spec.digest {brief(digest)} is not a valid digest")
    media = spec.get("mediaType")
    if media is None:
        media = ""
    if not isinstance(media, str):
        raise BadPushReview("spec.mediaType must be a string")
    try:
        manifest = manifest_from_dict(spec)
    except InvalidManifest as err:
        raise BadPushReview(str(err)) from None
    return PushRequest(namespace, repository, tag, digest, media, manifest, review)


def answer(request: PushRequest, decision: Decision) -> dict[str, Any]:
    """The same object, with ``status`` filled in from the decision. A shallow copy: the
    answer is only encoded, so the body's nested values can be shared, never changed."""
    status = {"allowed": decision.allowed, "reason": decision.reason, "message": decision.message}
    return {**request.body, "status": status}
