"""The PushReview Blueprint: ``POST /v1/pushreviews``.

Steps, in order, each able to end the request: who is calling (TokenReview: an anonymous
client never makes us read its body; an address with too many rejected tokens gets 429
with ``Retry-After``), a slot if the body is large (see ``BodyGate``), the body (bounded,
strictly parsed), may they ask (SubjectAccessReview in the push's namespace), are the
caches ready, the decision (the same rules as ``kubectl apply``), and a Warning Event on
the ImageStream when denied.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Final, Protocol

import urllib3
from flask import Blueprint, Response, jsonify, request
from kubernetes.client.exceptions import ApiException
from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

from kube.events import Recorder
from kube.logfields import fields
from quota.decision import Cause, Decision
from quota.names import IMAGE_API_VERSION, IMAGE_GROUP
from quota.push import Push
from serving.callerreviews import TooManyReviews, User
from serving.httpjson import (
    BodyGate,
    ServerBusy,
    json_error,
    read_body,
    request_timeout,
    server_busy,
    too_large,
)
from serving.metrics import by_label
from webhook import metrics
from webhook.pushreview.review import (
    MAX_BODY_BYTES,
    BadPushReview,
    PushRequest,
    answer,
    parse_push_review,
)

log = logging.getLogger(__name__)

PATH: Final = "/v1/pushreviews"


class Judge(Protocol):
    def judge(self, push: Push) -> Decision: ...


class TokenAuthenticator(Protocol):
    """May raise ``TooManyReviews`` when ``source`` (the client address) is over its limit."""

    def authenticate(self, token: str, source: str) -> User | None: ...


class PushAuthorizer(Protocol):
    def may_create_pushreview(self, user: User, namespace: str) -> bool: ...


class _Refused(Exception):
    """A step ended the request with this response and metrics label."""

    def __init__(self, response: Response, label: str) -> None:
        super().__init__(label)
        self.response = response
        self.label = label


def _unauthorized(message: str) -> _Refused:
    response = json_error(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="registry-v2-policy"'
    response.headers["Connection"] = "close"  # the body may be unread
    return _Refused(response, "unauthenticated")


def _throttled(retry_after: float) -> _Refused:
    response = json_error(429, "too many unknown tokens from this address; retry later")
    # Whole seconds (RFC 9110), rounded up so a client that waits that long gets through.
    response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    response.headers["Connection"] = "close"  # the body is unread
    return _Refused(response, "throttled")


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def pushreview_blueprint(
    judge: Judge,
    authenticator: TokenAuthenticator,
    authorizer: PushAuthorizer,
    recorder: Recorder,
    not_ready: Callable[[], str | None],
    gate: BodyGate | None = None,
) -> Blueprint:
    """``gate`` is shared with the worker's other APIs (a gate of its own when None)."""
    pushreviews = Blueprint("pushreview", __name__)
    body_gate = gate or BodyGate()

    def caller() -> User:
        token = _bearer_token()
        if token is None:
            raise _unauthorized("a bearer token is required")
        try:
            # The peer's address, never a forwarded header a client could set itself.
            user = authenticator.authenticate(token, request.remote_addr or "")
        except TooManyReviews as refused:
            raise _throttled(refused.retry_after) from None
        if user is None:
            raise _unauthorized("the bearer token is not valid")
        return user

    def push_request() -> PushRequest:
        try:
            return parse_push_review(read_body(MAX_BODY_BYTES), request.content_type)
        except RequestEntityTooLarge:
            raise _Refused(too_large(MAX_BODY_BYTES), "bad_request") from None
        except RequestTimeout:
            raise _Refused(request_timeout(), "bad_request") from None
        except BadPushReview as err:
            raise _Refused(json_error(400, str(err)), "bad_request") from None

    def authorize(user: User, push: Push) -> None:
        if not authorizer.may_create_pushreview(user, push.namespace):
            message = (
                f'user "{user.name}" cannot create resource "pushreviews" in API group '
                f'"{IMAGE_GROUP}" in the namespace "{push.namespace}"'
            )
            raise _Refused(json_error(403, message), "forbidden")

    def decide(push: Push) -> Decision:
        reason = not_ready()
        if reason:
            return Decision.deny(f"{reason}; retry", Cause.NOT_READY)
        return judge.judge(push)

    def record_denial(push: Push, decision: Decision) -> None:
        # A retryable denial passes on its own: no Event for what nobody need act on.
        if decision.allowed or decision.retryable:
            return
        recorder.record(
            {
                "kind": "ImageStream",
                "apiVersion": IMAGE_API_VERSION,
                "name": push.repository,
                "namespace": push.namespace,
            },
            "Warning",
            "PushDenied",
            f"push of {push.repository}:{push.tag or push.digest} denied: {decision.message}",
        )

    def review(started: float) -> tuple[Response, str]:
        user = caller()
        with body_gate.admit(request.content_length):
            wire = push_request()
            push = wire.push
            authorize(user, push)
            decision = decide(push)
            label = "allowed" if decision.allowed else "denied"
            log.info(
                "pushreview",
                extra=fields(
                    namespace=push.namespace,
                    repository=push.repository,
                    tag=push.tag or "",
                    digest=push.digest,
                    user=user.name,
                    decision=label,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                ),
            )
            record_denial(push, decision)
            return jsonify(answer(wire, decision)), label

    answered = by_label(metrics.PUSH_REVIEWS)

    @pushreviews.post(PATH)
    def push_review() -> Response:
        started = time.perf_counter()
        try:
            response, label = review(started)
        except _Refused as refused:
            response, label = refused.response, refused.label
        except ServerBusy as busy:
            log.warning("pushreview: %s", busy)
            response, label = server_busy(), "busy"
        except (ApiException, urllib3.exceptions.HTTPError) as err:
            # TokenReview or SubjectAccessReview could not be made: retryable.
            log.warning("pushreview: API server unavailable: %s", type(err).__name__)
            response = json_error(503, "cannot reach the API server to check the caller; retry")
            label = "error"
        answered(label).inc()
        metrics.PUSH_REVIEW_LATENCY.observe(time.perf_counter() - started)
        return response

    return pushreviews
