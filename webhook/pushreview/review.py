"""PushReview bodies: strict parsing into plain data, and the answer's shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from quota.decision import Decision
from quota.measure import InvalidManifest, manifest_from_dict
from quota.names import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    IMAGE_API_VERSION,
    MAX_NAME_LENGTH,
    is_digest,
    is_tag,
)
from quota.push import Push
from serving.httpjson import JsonLimits, brief, typed_json_object

API_VERSION = IMAGE_API_VERSION
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


class BadPushReview(ValueError):
    """The body is not a valid PushReview; the message names the field."""


@dataclass(frozen=True)
class PushRequest:
    """A PushReview on the wire: the push the rules judge, and the body it came in (echoed
    in the answer), which the rules never see."""

    push: Push
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
    if tag is not None and not is_tag(tag):
        raise BadPushReview(f"spec.tag {brief(tag)} is not a valid tag")
    digest = _string(spec, "digest", required=True) or ""
    if not is_digest(digest):
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
    return PushRequest(Push(namespace, repository, tag, digest, media, manifest), review)


def answer(request: PushRequest, decision: Decision) -> dict[str, Any]:
    """The same object, with ``status`` filled in from the decision. A shallow copy: the
    answer is only encoded, so the body's nested values can be shared, never changed."""
    status = {"allowed": decision.allowed, "reason": decision.reason, "message": decision.message}
    return {**request.body, "status": status}
