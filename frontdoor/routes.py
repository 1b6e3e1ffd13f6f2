"""The front door's Blueprint: the OCI Distribution API (``/v2/...``) and the token
endpoint the ``WWW-Authenticate`` challenge names.

Every request under ``/v2/`` is authenticated and authorized before anything reaches the
registry; a manifest PUT is judged (``frontdoor.pushes``); a manifest read is
forwarded only by a digest the Image API records for the repository, and a tag list is
answered from the ImageStream (``frontdoor.reads``); a manifest DELETE is recorded in
the Image API before the registry sees it, and a blob DELETE checked against the images
the repository records (``frontdoor.deletes``); everything else is streamed through
(``frontdoor.upstream``). Errors use the distribution spec's
format, so a client prints their message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode

import orjson
from flask import Blueprint, Response, request
from urllib3.exceptions import HTTPError

from frontdoor import distribution as oci
from frontdoor import metrics
from frontdoor.access import DELETE, PULL, PUSH, VERBS, Access, challenge, scope, token_from
from frontdoor.blobsizes import RedirectedHead
from frontdoor.deletes import ManifestDeletes
from frontdoor.manifestgate import ManifestGate
from frontdoor.manifests import MAX_MANIFEST_BYTES
from frontdoor.pushes import RETRY_AFTER_SECONDS, ManifestPut, ManifestPuts, PushDenied
from frontdoor.readonly import read_only_refusal
from frontdoor.reads import ManifestReads
from frontdoor.records import RecordFailed
from frontdoor.uploads import Uploads
from frontdoor.upstream import (
    AnswerTooLarge,
    BodyIncomplete,
    Upstream,
    UpstreamResponse,
    request_body,
)
from kube.logfields import fields
from quota.names import IMAGE_GROUP
from quota.served import tag_page
from serving.callerreviews import TooManyReviews, User
from serving.httpjson import ServerBusy, brief

log = logging.getLogger(__name__)

TOKEN_PATH: Final = "/token"
TOKEN_EXPIRES_SECONDS: Final = 60
"""What the token endpoint tells clients; the token is the Kubernetes token itself, which
we review on every request (cached 10 s), so this only paces the clients' re-logins."""
API_VERSION_HEADER: Final = ("Docker-Distribution-API-Version", "registry/2.0")
SERVICE_NAME: Final = "registry-v2"
MOUNT_PARAMETERS: Final = frozenset({"mount", "from"})
BLOB_CONTENT_TYPE: Final = "application/octet-stream"
"""The distribution spec's type for blob upload bodies."""
MAX_PAGE_DIGITS: Final = 9
"""Digits of a tag list's ``n`` read as a page size: a billion tags is more than any
stream holds, and a longer string is not parsed (Python refuses ints past 4,300 digits)."""
DELETE_ACCEPTED: Final = 202
"""A manifest delete's answer: "202 Accepted" (the distribution spec, end-9)."""
MANIFEST_BODY_SECONDS: Final = 30.0
"""Wall-clock time a manifest's body may take to arrive, however it trickles: the largest
we take (4 MiB) in 30 s is a 1.1 Mbit/s link, over which the image's layers took hours.
The connection's own body limit (600 s) is for layers."""


def _error(err: oci.RegistryError) -> Response:
    response = Response(err.body(), status=err.status, content_type="application/json")
    response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
    for name, value in err.headers.items():
        response.headers[name] = value
    return response


def _streamed(answer: UpstreamResponse, counted: str) -> Response:
    """The registry's answer, its body streamed through and counted as it goes."""

    def body() -> Iterator[bytes]:
        try:
            for chunk in answer.body:
                metrics.BYTES(counted).inc(len(chunk))
                yield chunk
        finally:
            answer.close()

    response = Response(body(), status=answer.status, direct_passthrough=True)
    response.headers.clear()
    for name, value in answer.headers:
        response.headers.add(name, value)
    response.automatically_set_content_length = False
    return response


@dataclass
class _Seen:
    """What a request turned out to be, for its metric and log line."""

    route: str = "unknown"
    repository: str = ""
    user: str = ""


_DOING: Final = {PULL: "pull from", PUSH: "push to", DELETE: "delete from"}
"""How a refusal names each action."""


def _refusal(user: User, route: oci.Route) -> str:
    action = route.action or PULL
    return (
        f"{user.name} may not {_DOING[action]} {route.repository}: "
        f"that needs {VERBS[action]} on imagestreams/layers "
        f"({IMAGE_GROUP}) in namespace {route.namespace}"
    )


def _too_many(err: TooManyReviews) -> oci.RegistryError:
    return oci.too_many_requests(
        "too many unknown tokens from this address; retry later", int(err.retry_after) + 1
    )


def _incomplete(err: BodyIncomplete, route: str) -> Response:
    """The answer to a body that ended before it was whole. The registry's request was
    cut with it (``frontdoor.upstream.BodyIncomplete``); the client has usually
    gone (a Ctrl-C during a push), and one still there reads why, on a connection that
    then closes, since the rest of its body was never read."""
    metrics.BODIES_INCOMPLETE(route, "timeout" if err.timed_out else "cut").inc()
    log.info("request body incomplete: %s", err, extra=fields(route=route))
    response = _error(oci.size_invalid(str(err)))
    response.headers["Connection"] = "close"
    return response


class FrontDoor:
    def __init__(
        self,
        access: Access,
        upstream: Upstream,
        pushes: ManifestPuts,
        gate: ManifestGate | None = None,
        *,
        reads: ManifestReads,
        uploads: Uploads,
        deletes: ManifestDeletes,
        read_only: Callable[[str], bool] | None = None,
    ) -> None:
        self._access = access
        self._deletes = deletes
        self._upstream = upstream
        self._pushes = pushes
        self._reads = reads
        self._uploads = uploads
        # frontdoor.readonly: while the registry is collected, writes are refused.
        self._read_only = read_only or (lambda method: False)
        # A hostile 4 MiB manifest costs some 100 MiB while parsed: only so many at once.
        self._gate = gate or ManifestGate()

    def _realm(self) -> str:
        return request.host_url.rstrip("/") + TOKEN_PATH

    def _unauthorized(self, repository: str | None, action: str | None) -> Response:
        wanted = scope(repository, action) if repository and action else None
        return _error(
            oci.unauthorized(
                "authentication required: log in with a Kubernetes token for the registry "
                "(a pull secret's, or kubectl create token --audience)",
                challenge(self._realm(), SERVICE_NAME, wanted),
            )
        )

    def _user(self) -> User | None:
        return self._access.user(request.headers.get("Authorization"), request.remote_addr or "")

    def token(self) -> Response:
        """The token endpoint: Basic credentials in, the same token out as a Bearer
        token (OpenShift's registry does the same), once the API server vouches for it."""
        try:
            user = self._user()
        except TooManyReviews as err:
            return _error(_too_many(err))
        if user is None:
            return self._unauthorized(None, None)
        value = token_from(request.headers.get("Authorization")) or ""
        issued = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        payload = {
            "token": value,
            "access_token": value,
            "expires_in": TOKEN_EXPIRES_SECONDS,
            "issued_at": issued,
        }
        return Response(orjson.dumps(payload), content_type="application/json")

    def serve(self, path: str) -> Response:
        """One ``/v2/`` request: answered, counted and logged (never the credentials)."""
        started = time.monotonic()
        seen = _Seen()
        response = self._answer("/v2/" + path, seen)
        metrics.REQUESTS(request.method, seen.route, str(response.status_code)).inc()
        log.info(
            "registry request",
            extra=fields(
                method=request.method,
                route=seen.route,
                repository=seen.repository,
                user=seen.user,
                status=response.status_code,
                seconds=round(time.monotonic() - started, 4),
            ),
        )
        return response

    def _answer(self, path: str, seen: _Seen) -> Response:
        try:
            route = oci.parse_route(request.method, path)
            seen.route = route.kind
            seen.repository = route.repository or ""
            user = self._user()
            if user is None:
                return self._unauthorized(seen.repository or None, route.action)
            seen.user = user.name
            if self._read_only(request.method):
                raise read_only_refusal()
            if route.kind == "base":
                response = Response(b"{}", content_type="application/json")
                response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
                return response
            oci.require_offered(route)
            if route.action is None or route.namespace is None:
                raise oci.unsupported(f"{request.method} {path} is not offered by the front door")
            if not self._access.allowed(user, route.namespace, route.action):
                raise oci.denied(_refusal(user, route))
            return self._dispatch(route, user)
        except oci.RegistryError as err:
            return _error(err)
        except TooManyReviews as err:
            return _error(_too_many(err))
        except PushDenied as err:
            metrics.DENIALS(metrics.denial_label(err.decision.cause)).inc()
            if err.decision.retryable:
                return _error(oci.unavailable(err.decision.message, RETRY_AFTER_SECONDS))
            return _error(oci.denied(err.decision.message))
        except RedirectedHead as err:
            # The registry's configuration: logged once where it is found (blobsizes).
            return _error(
                oci.unavailable(f"{err}; see the front door's install guide", RETRY_AFTER_SECONDS)
            )
        except RecordFailed as err:
            log.warning("recording a push failed: %s", err)
            message = f"recording the push in the Image API failed ({err}); retry"
            return _error(oci.unavailable(message, RETRY_AFTER_SECONDS))
        except BodyIncomplete as err:
            return _incomplete(err, seen.route)
        except AnswerTooLarge as err:
            # Only a manifest an index names is read whole: the client pushed it, and the
            # index naming it cannot be judged.
            message = f"a manifest this one names is too large to judge: {err}"
            return _error(oci.manifest_invalid(message))
        except (HTTPError, OSError) as err:
            log.warning("the upstream registry failed: %s", type(err).__name__)
            message = "the registry behind the front door did not answer; retry"
            return _error(oci.unavailable(message, RETRY_AFTER_SECONDS))

    def _dispatch(self, route: oci.Route, user: User) -> Response:
        if route.kind == "manifest" and request.method == "PUT":
            return self._put_manifest(route)
        if route.action == DELETE:
            deleted = self._delete(route)
            if deleted is not None:
                return deleted
        if route.kind == "manifest":
            return self._read_manifest(route)
        if route.kind == "tags":
            return self._list_tags(route)
        query = request.query_string.decode("latin-1")
        if route.kind == "upload_start":
            self._uploads.admit_start(route)
            query = self._mount_query(route, user, query)
        # The path that was checked, rebuilt from the route: never the client's own text.
        path = oci.route_path(route) + (f"?{query}" if query else "")
        length = request.content_length
        has_body = request.method in ("PUT", "PATCH", "POST")
        body = request_body(request.stream, length) if has_body else None
        if body is not None and route.kind in ("upload_start", "upload"):
            content_range = request.headers.get("Content-Range")
            body = self._uploads.bound(route, query, content_range, body, length)
        if body is not None:
            body = self._uploads.committing(route, body)
        headers = dict(request.headers)
        if route.kind in ("upload_start", "upload"):
            # Blob bytes, whatever the client says: a registry parses a form body for
            # parameters (distribution's FormValue reads mount= and from= from it), which
            # would carry a mount past the check of the query above.
            headers["Content-Type"] = BLOB_CONTENT_TYPE
        answer = self._upstream.request(
            request.method, path, headers, body, length if has_body else None
        )
        if has_body and length:
            metrics.BYTES("received").inc(length)
        return _streamed(answer, "sent")

    def _mount_query(self, route: oci.Route, user: User, query: str) -> str:
        """A cross-repository mount needs pull on the source, and a blob within the
        target namespace's largest image: otherwise (or when the parameters do not name
        one we can check), they are dropped and a plain upload starts (what distribution
        does when a mount cannot be made), so no one reads a blob through another's
        repository, and no blob skips the upload bound. The query is rebuilt from its
        decoded form, as the registry will decode it: ``%66rom=`` is ``from=`` to it too."""
        args = request.args
        if "mount" not in args and "from" not in args:
            return query
        source = oci.mount_source(args)
        if source is not None:
            digest, repository = source
            namespace, _ = oci.split_repository(repository)
            if self._access.allowed(user, namespace, PULL) and self._uploads.mount_fits(
                route, digest, repository
            ):
                return query
        kept = [(k, v) for k, v in args.items(multi=True) if k not in MOUNT_PARAMETERS]
        return urlencode(kept)

    def _delete(self, route: oci.Route) -> Response | None:
        """A manifest deleted (202, as the spec answers), or a blob delete checked and
        left to be forwarded (None); ``frontdoor.deletes`` says in what order."""
        namespace, name, reference = route.namespace or "", route.name or "", route.reference or ""
        try:
            if route.kind == "blob":
                self._deletes.check_blob(namespace, name, reference)
                return None
            self._deletes.delete_manifest(namespace, name, reference)
        except RecordFailed as err:
            log.warning("reading or writing the Image API for a delete failed: %s", err)
            message = "the Image API could not be read or written to delete this; retry"
            raise oci.unavailable(message, RETRY_AFTER_SECONDS) from None
        response = Response(b"", status=DELETE_ACCEPTED)
        response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
        return response

    def _read_manifest(self, route: oci.Route) -> Response:
        """GET or HEAD of a manifest, forwarded by the digest the Image API records for
        that tag or digest in this repository, never by the tag: the registry's own tag
        may be stale, and its storage may hold manifests nobody judged."""
        namespace, name, reference = route.namespace or "", route.name or "", route.reference or ""
        try:
            digest = self._reads.manifest_digest(namespace, name, reference)
        except RecordFailed as err:
            log.warning("reading the Image API for a manifest read failed: %s", err)
            message = "the Image API could not be read to serve this manifest; retry"
            raise oci.unavailable(message, RETRY_AFTER_SECONDS) from None
        if digest is None:
            raise oci.manifest_unknown(
                f"manifest {brief(reference)} is not recorded in repository"
                f" {route.repository}: no such tag or image in its ImageStream"
            )
        answer = self._upstream.request(
            request.method, f"/v2/{route.repository}/manifests/{digest}", dict(request.headers)
        )
        return _streamed(answer, "sent")

    def _list_tags(self, route: oci.Route) -> Response:
        """The ImageStream's tags, paginated as the spec says (``n``, ``last``, a ``Link``
        to the next page); the registry's own list may hold tags the stream lost. An
        ``n`` that is no number is not a page size, and the whole list is answered."""
        try:
            tags = self._reads.tags(route.namespace or "", route.name or "")
        except RecordFailed as err:
            log.warning("reading the ImageStream for a tag list failed: %s", err)
            message = "the Image API could not be read to list tags; retry"
            raise oci.unavailable(message, RETRY_AFTER_SECONDS) from None
        if tags is None:
            raise oci.name_unknown(
                f"repository {route.repository} is not known: no ImageStream records it"
            )
        number = request.args.get("n", "")
        count = (
            int(number)
            if number.isascii() and number.isdigit() and len(number) <= MAX_PAGE_DIGITS
            else None
        )
        page = tag_page(tags, count, request.args.get("last"))
        response = Response(
            orjson.dumps({"name": route.repository, "tags": page.tags}),
            content_type="application/json",
        )
        response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
        if page.last is not None:
            following = urlencode({"n": count, "last": page.last})
            response.headers["Link"] = f'</v2/{route.repository}/tags/list?{following}>; rel="next"'
        return response

    def _put_manifest(self, route: oci.Route) -> Response:
        namespace = route.namespace or ""
        try:
            with self._gate.holding(namespace) as hold:
                body = _receive_manifest(hold)
                with self._gate.admit(namespace, len(body)):
                    put = ManifestPut(
                        namespace,
                        route.name or "",
                        route.reference or "",
                        body,
                        request.headers.get("Content-Type"),
                    )
                    answer = self._pushes.put(put)
        except ServerBusy:
            message = "too many large manifests at once; retry"
            busy = oci.unavailable(message, RETRY_AFTER_SECONDS)
            # The body may be partly unread: the connection cannot carry another request.
            busy.headers = {**busy.headers, "Connection": "close"}
            raise busy from None
        metrics.BYTES("received").inc(len(body))
        return _streamed(answer, "sent")


def _receive_manifest(hold: Callable[[int], None]) -> bytes:
    """The whole manifest body, received before any slot is taken, within
    ``MANIFEST_BODY_SECONDS`` of wall-clock time on this connection
    (:class:`BodyIncomplete` past it, or when it ends short); each chunk is ``hold``-ed
    as it arrives (the worker's bound on manifest bytes held)."""
    length = request.content_length
    if length is not None and length > MAX_MANIFEST_BYTES:
        raise oci.size_invalid(f"a manifest is at most {MAX_MANIFEST_BYTES} bytes")
    connection = request.environ.get("gunicorn.socket")
    limit_body = getattr(connection, "limit_body", None)  # serving.tlsserver.DeadlineSocket
    if limit_body is not None:
        limit_body(MANIFEST_BODY_SECONDS)
    body = bytearray()
    for chunk in request_body(request.stream, length):
        hold(len(chunk))
        body += chunk
        if len(body) > MAX_MANIFEST_BYTES:
            raise oci.size_invalid(f"a manifest is at most {MAX_MANIFEST_BYTES} bytes")
    return bytes(body)


def frontdoor_blueprint(door: FrontDoor) -> Blueprint:
    api = Blueprint("frontdoor", __name__)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    api.add_url_rule(TOKEN_PATH, "token", door.token, methods=["GET"])
    api.add_url_rule("/v2/", "base", door.serve, defaults={"path": ""}, methods=methods)
    api.add_url_rule("/v2/<path:path>", "v2", door.serve, methods=methods)
    return api
