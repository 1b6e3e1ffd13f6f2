"""PushReview bodies: strict parsing into plain data, and the answer's shape."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from quota.decision import Decision
from quota.measure import InvalidManifest, Manifest, manifest_from_dict
from webhook.httpjson import typed_json_object

API_VERSION = "image.alauda.io/v1"
KIND = "PushReview"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# OCI image-spec digest grammar. All four are used with fullmatch: `$` alone also matches
# before a final newline.
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


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
        body, content_type, api_version=API_VERSION, kind=KIND, error=BadPushReview
    )
    spec = review.get("spec")
    if not isinstance(spec, dict):
        raise BadPushReview("spec is required and must be an object")
    namespace = _string(spec, "namespace", required=True) or ""
    if not _DNS_LABEL.fullmatch(namespace):
        raise BadPushReview(f"spec.namespace {namespace!r} is not a valid namespace name")
    repository = _string(spec, "repository", required=True) or ""
    if len(repository) > 253 or not _DNS_SUBDOMAIN.fullmatch(repository):
        raise BadPushReview(f"spec.repository {repository!r} is not a valid ImageStream name")
    tag = _string(spec, "tag", required=False)
    if tag is not None and not _TAG.fullmatch(tag):
        raise BadPushReview(f"spec.tag {tag!r} is not a valid tag")
    digest = _string(spec, "digest", required=True) or ""
    if not _DIGEST.fullmatch(digest):
        raise BadPushReview(f"spec.digest {digest!r} is not a valid digest")
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
    """The same object, with ``status`` filled in from the decision."""
    out = copy.deepcopy(request.body)
    out["status"] = {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "message": decision.message,
    }
    return out
