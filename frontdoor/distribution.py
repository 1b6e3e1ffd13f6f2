"""The OCI Distribution v2 API as OpenShift lays repositories out: routes and errors.

A repository is ``<namespace>/<name>``, exactly two path components: the namespace whose
LimitRange and ResourceQuota bind the push, and the ImageStream that records it. Names are
judged by PushReview's own grammars, so both doors accept the same repositories.

Errors use the distribution spec's format and only its codes: the spec closes the set
("The `code` field MUST be one of the following", spec.md, Error Codes). So a path that is
no endpoint of the API is a 404 ``NAME_UNKNOWN`` (the set has no generic "not found";
distribution itself answers such paths with a bare text 404), and a tag that breaks the
grammar is ``MANIFEST_INVALID`` (distribution's ``TAG_INVALID`` is not in the set).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from quota.names import DNS_LABEL, DNS_SUBDOMAIN, MAX_NAME_LENGTH, TAG_GRAMMAR, is_digest, is_tag
from serving.httpjson import brief

# The spec's error codes used here, and their statuses: the spec's table of codes and
# distribution's registry/api/errcode (register.go) and registry/api/v2/errors.go.
BLOB_UNKNOWN: Final = "BLOB_UNKNOWN"
BLOB_UPLOAD_INVALID: Final = "BLOB_UPLOAD_INVALID"
BLOB_UPLOAD_UNKNOWN: Final = "BLOB_UPLOAD_UNKNOWN"
DENIED: Final = "DENIED"
DIGEST_INVALID: Final = "DIGEST_INVALID"
MANIFEST_BLOB_UNKNOWN: Final = "MANIFEST_BLOB_UNKNOWN"
MANIFEST_INVALID: Final = "MANIFEST_INVALID"
MANIFEST_UNKNOWN: Final = "MANIFEST_UNKNOWN"
NAME_INVALID: Final = "NAME_INVALID"
NAME_UNKNOWN: Final = "NAME_UNKNOWN"
SIZE_INVALID: Final = "SIZE_INVALID"
TOOMANYREQUESTS: Final = "TOOMANYREQUESTS"
UNAUTHORIZED: Final = "UNAUTHORIZED"
UNSUPPORTED: Final = "UNSUPPORTED"
UNAVAILABLE: Final = "UNAVAILABLE"

STATUS: Final[Mapping[str, int]] = {
    BLOB_UNKNOWN: 404,
    BLOB_UPLOAD_INVALID: 404,  # distribution's ErrorCodeBlobUploadInvalid
    BLOB_UPLOAD_UNKNOWN: 404,
    DENIED: 403,
    DIGEST_INVALID: 400,
    MANIFEST_BLOB_UNKNOWN: 400,
    MANIFEST_INVALID: 400,
    MANIFEST_UNKNOWN: 404,
    NAME_INVALID: 400,
    NAME_UNKNOWN: 404,
    SIZE_INVALID: 400,
    TOOMANYREQUESTS: 429,
    UNAUTHORIZED: 401,
    UNSUPPORTED: 405,  # distribution's ErrorCodeUnsupported: Method Not Allowed
    UNAVAILABLE: 503,  # distribution's ErrorCodeUnavailable (errcode/register.go)
}
"""The HTTP status of each code, as distribution answers it."""
RANGE_NOT_SATISFIABLE: Final = 416
"""The status of a chunk whose ``Content-Range`` the registry cannot take: the spec's
answer to a chunk "uploaded out of order" (spec.md, Pushing a blob in chunks), and the
status of distribution's RANGE_INVALID (errcode/register.go), a code outside the spec's
set, so the front door says it with the spec's BLOB_UPLOAD_INVALID."""


class RegistryError(Exception):
    """A refusal in the distribution spec's error format; ``status`` follows from ``code``.

    ``headers`` are the ones the answer must carry (``Allow`` on a 405, ``Retry-After``
    on a 429); ``status`` is given only where the spec asks another than the code's own
    (a 416 for a range); ``detail`` is optional JSON, left out of the body when None, as
    distribution leaves it out (``omitempty``).
    """

    def __init__(
        self,
        code: str,
        message: str,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status: int = STATUS[code] if status is None else status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers: Mapping[str, str] = dict(headers or {})

    def body(self) -> bytes:
        """``{"errors":[{"code":...,"message":...,"detail":...}]}``, ASCII JSON."""
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}, separators=(",", ":")).encode()


def name_invalid(message: str) -> RegistryError:
    return RegistryError(NAME_INVALID, message)


def name_unknown(message: str) -> RegistryError:
    return RegistryError(NAME_UNKNOWN, message)


def manifest_invalid(message: str) -> RegistryError:
    return RegistryError(MANIFEST_INVALID, message)


def manifest_unknown(message: str) -> RegistryError:
    return RegistryError(MANIFEST_UNKNOWN, message)


def manifest_blob_unknown(digest: str) -> RegistryError:
    return RegistryError(
        MANIFEST_BLOB_UNKNOWN,
        f"the manifest references {brief(digest)}, which this repository does not have",
        detail={"digest": digest},
    )


def digest_invalid(message: str) -> RegistryError:
    return RegistryError(DIGEST_INVALID, message)


def blob_unknown(message: str) -> RegistryError:
    return RegistryError(BLOB_UNKNOWN, message)


def blob_upload_unknown(message: str) -> RegistryError:
    return RegistryError(BLOB_UPLOAD_UNKNOWN, message)


def range_invalid(message: str) -> RegistryError:
    """A chunk's ``Content-Range`` the upload cannot take: 416, as distribution answers."""
    return RegistryError(BLOB_UPLOAD_INVALID, message, status=RANGE_NOT_SATISFIABLE)


def size_invalid(message: str) -> RegistryError:
    return RegistryError(SIZE_INVALID, message)


def unauthorized(message: str, challenge: str | None = None) -> RegistryError:
    """A 401; ``challenge`` is the ``WWW-Authenticate`` value the client must answer."""
    return RegistryError(
        UNAUTHORIZED, message, headers={"WWW-Authenticate": challenge} if challenge else None
    )


def denied(message: str) -> RegistryError:
    return RegistryError(DENIED, message)


def unsupported(message: str, allow: tuple[str, ...] = ()) -> RegistryError:
    """A 405; ``allow`` fills the ``Allow`` header HTTP requires on it (RFC 9110 15.5.6)."""
    return RegistryError(
        UNSUPPORTED, message, headers={"Allow": ", ".join(allow)} if allow else None
    )


def too_many_requests(message: str, retry_after_seconds: int | None = None) -> RegistryError:
    headers = None if retry_after_seconds is None else {"Retry-After": str(retry_after_seconds)}
    return RegistryError(TOOMANYREQUESTS, message, headers=headers)


def unavailable(message: str, retry_after_seconds: int) -> RegistryError:
    """A 503 the client may retry: a condition that passes on its own (quota usage not
    counted yet, the API server or the registry briefly away)."""
    return RegistryError(UNAVAILABLE, message, headers={"Retry-After": str(retry_after_seconds)})


# --- names -----------------------------------------------------------------------------


def split_repository(repository: str) -> tuple[str, str]:
    """``(namespace, name)`` of ``<namespace>/<name>``, or NAME_INVALID saying which and why."""
    parts = repository.split("/")
    if len(parts) != 2:
        raise name_invalid(
            f"repository {brief(repository)} must be <namespace>/<name>: exactly two path"
            f" components, got {len(parts)}"
        )
    namespace, name = parts
    if not DNS_LABEL.fullmatch(namespace):
        raise name_invalid(
            f"namespace {brief(namespace)} of repository {brief(repository)} is not a valid"
            " namespace name: lowercase letters, digits and '-', starting and ending with a"
            " letter or digit, at most 63 characters"
        )
    if len(name) > MAX_NAME_LENGTH or not DNS_SUBDOMAIN.fullmatch(name):
        raise name_invalid(
            f"name {brief(name)} of repository {brief(repository)} is not a valid ImageStream"
            " name: lowercase letters, digits, '-' and '.', starting and ending with a letter"
            f" or digit, at most {MAX_NAME_LENGTH} characters"
        )
    return namespace, name


# --- routes ----------------------------------------------------------------------------

RouteKind = Literal[
    "base", "blob", "upload_start", "upload", "manifest", "tags", "referrers", "catalog"
]
Action = Literal["pull", "push", "delete"]

ALLOWED_METHODS: Final[Mapping[RouteKind, tuple[str, ...]]] = {
    # The spec's endpoints (end-1 to end-13); HEAD on the base too, which clients use to
    # probe it and distribution answers.
    "base": ("GET", "HEAD"),
    "blob": ("GET", "HEAD", "DELETE"),
    "upload_start": ("POST",),
    "upload": ("GET", "PATCH", "PUT", "DELETE"),
    "manifest": ("GET", "HEAD", "PUT", "DELETE"),
    "tags": ("GET",),
    "referrers": ("GET",),
    "catalog": ("GET",),
}
_PULL_METHODS: Final = frozenset({"GET", "HEAD"})
_DELETABLE: Final = frozenset({"manifest", "blob"})
"""The endpoints whose DELETE is content management (end-9, end-10), with a right of its own."""

PREFIX: Final = "/v2/"
# The tail of a repository's endpoint, after the shortest repository prefix that leaves
# one: a name may have any number of components here, so that a wrong number is reported
# as NAME_INVALID rather than as an unknown path.
_ENDPOINT: Final = re.compile(
    r"(?P<repository>.*?)/(?:"
    r"(?P<upload_start>blobs/uploads/?)"
    r"|blobs/uploads/(?P<upload>[^/]+)"
    r"|blobs/(?P<blob>[^/]+)"
    r"|manifests/(?P<manifest>[^/]+)"
    r"|(?P<tags>tags/list)"
    r"|referrers/(?P<referrers>[^/]+)"
    r")",
    re.DOTALL,
)
UPLOAD_ID: Final = re.compile(r"[a-zA-Z0-9._=-]+")
"""An upload session id, as distribution's route matches it (registry/api/v2/routes.go)."""
DOT_SEGMENTS: Final = frozenset({".", ".."})
"""Path segments that URL resolution removes (RFC 3986 section 5.2.4): UPLOAD_ID matches
them, but an HTTP client normalises them away, so the registry would be sent another path
than the one checked. distribution's ids are UUIDs: none of them is a dot segment."""


@dataclass(frozen=True)
class Route:
    """One request's endpoint. ``reference`` is the digest (blob, referrers), the tag or
    digest (manifest) or the upload id (upload); None for the others."""

    kind: RouteKind
    method: str
    namespace: str | None = None
    name: str | None = None
    reference: str | None = None

    @property
    def repository(self) -> str | None:
        if self.namespace is None or self.name is None:
            return None
        return f"{self.namespace}/{self.name}"

    @property
    def action(self) -> Action | None:
        """What the caller must be allowed in the repository's namespace: reads pull,
        writes push, deleting a manifest or blob deletes (cancelling an upload is part of
        a push, as OpenShift's registry judges it); the base and the catalog belong to no
        repository."""
        if self.repository is None:
            return None
        if self.method == "DELETE" and self.kind in _DELETABLE:
            return "delete"
        return "pull" if self.method in _PULL_METHODS else "push"


def _not_an_endpoint(path: str) -> RegistryError:
    return name_unknown(f"{brief(path)} is not an endpoint of the registry API")


def parse_route(method: str, path: str) -> Route:
    """The endpoint of a request, or the RegistryError to answer it with.

    ``path`` is the decoded URL path. Checked in the order a client can act on: the
    endpoint exists (404), the repository name is valid (400), the method is one the
    endpoint has (405), then the reference (digest, tag or upload id).
    """
    if path in (PREFIX, PREFIX.rstrip("/")):
        return _checked_method(Route("base", method))
    if not path.startswith(PREFIX):
        raise _not_an_endpoint(path)
    rest = path[len(PREFIX) :]
    if rest == "_catalog":
        return _checked_method(Route("catalog", method))
    match = _ENDPOINT.fullmatch(rest)
    if match is None:
        raise _not_an_endpoint(path)
    namespace, name = split_repository(match["repository"])
    if match["upload_start"] is not None:
        return _checked_method(Route("upload_start", method, namespace, name))
    if (upload := match["upload"]) is not None:
        route = _checked_method(Route("upload", method, namespace, name, upload))
        if not UPLOAD_ID.fullmatch(upload) or upload in DOT_SEGMENTS:
            raise blob_upload_unknown(f"{brief(upload)} is not an upload id")
        return route
    if (reference := match["manifest"]) is not None:
        route = _checked_method(Route("manifest", method, namespace, name, reference))
        if not (is_tag(reference) or is_digest(reference)):
            raise _bad_manifest_reference(method, reference)
        return route
    if match["tags"] is not None:
        return _checked_method(Route("tags", method, namespace, name))
    kind: RouteKind = "blob" if match["blob"] is not None else "referrers"
    digest = match[kind]
    route = _checked_method(Route(kind, method, namespace, name, digest))
    if not is_digest(digest):
        raise digest_invalid(f"{brief(digest)} is not a valid digest")
    return route


_ROUTE_PATHS: Final[Mapping[RouteKind, str]] = {
    "base": "",
    "catalog": "_catalog",
    "blob": "{repository}/blobs/{reference}",
    "upload_start": "{repository}/blobs/uploads/",
    "upload": "{repository}/blobs/uploads/{reference}",
    "manifest": "{repository}/manifests/{reference}",
    "tags": "{repository}/tags/list",
    "referrers": "{repository}/referrers/{reference}",
}
"""Each endpoint's path after ``/v2/``, as the spec writes it (end-1 to end-13)."""


def route_path(route: Route) -> str:
    """The path to forward for a parsed route, built from what was checked and nothing
    else: whatever else the client's path held (a missing trailing slash, say) is not
    passed on. Every part is a checked name, digest, tag or upload id, so the path needs
    no escaping and holds no dot segment."""
    return PREFIX + _ROUTE_PATHS[route.kind].format(
        repository=route.repository, reference=route.reference
    )


def _checked_method(route: Route) -> Route:
    allowed = ALLOWED_METHODS[route.kind]
    if route.method not in allowed:
        raise unsupported(
            f"{brief(route.method)} is not a method of this endpoint: {', '.join(allowed)}",
            allow=allowed,
        )
    return route


def _bad_manifest_reference(method: str, reference: str) -> RegistryError:
    """A push names a bad tag (MANIFEST_INVALID: the spec's set has no tag code); a read or
    delete names a manifest that cannot exist (404, as distribution answers)."""
    why = f"{brief(reference)} is neither a tag ({TAG_GRAMMAR}) nor a digest"
    return manifest_invalid(why) if method == "PUT" else manifest_unknown(why)


REFERRERS_NOT_OFFERED_STATUS: Final = 404
"""The status of a referrers query here: what a registry without the referrers API answers
(distribution 3.1 has no such route), and the one on which a client "MUST fallback" to
the referrers tag schema (spec.md, Unavailable Referrers API); a 405 would fail it."""


def require_offered(route: Route) -> None:
    """UNSUPPORTED for what the spec has but the front door does not offer, saying why."""
    if route.kind == "referrers":
        raise RegistryError(
            UNSUPPORTED,
            "the referrers API is not offered: the registry would list manifests naming this"
            " one whether or not the Image API records them; use the referrers tag schema"
            " (a tag <alg>-<digest>), which is judged and recorded like any tag",
            status=REFERRERS_NOT_OFFERED_STATUS,
        )
    if route.kind == "catalog":
        raise unsupported(
            "the repository catalog is not offered: it would list repositories in namespaces"
            " the caller cannot read; list ImageStreams with kubectl instead"
        )


def mount_source(query: Mapping[str, str]) -> tuple[str, str] | None:
    """``(digest, repository)`` of a cross-repository mount (``?mount=<digest>&from=<repo>``),
    or None when absent or malformed: then the proxy drops both and starts a plain
    upload, as distribution does with a mount it cannot make."""
    digest, source = query.get("mount"), query.get("from")
    if not isinstance(digest, str) or not isinstance(source, str) or not is_digest(digest):
        return None
    try:
        split_repository(source)
    except RegistryError:
        return None
    return digest, source
