"""``POST /v1/pushreviews``: authenticate, authorize, parse, judge, answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import urllib3
from flask import Flask, Response, jsonify, request
from kubernetes.client.exceptions import ApiException
from werkzeug.exceptions import RequestEntityTooLarge

from kube.events import EventRecorder
from webhook import metrics
from webhook.app import json_error, read_body
from webhook.pushreview.auth import Authenticator, Authorizer
from webhook.pushreview.judge import PushJudge
from webhook.pushreview.review import BadPushReview, answer, parse_push_review

log = logging.getLogger(__name__)

PATH = "/v1/pushreviews"
MAX_BODY_BYTES = 1024 * 1024
"""A manifest has at most a few hundred layers: a megabyte is generous."""


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(message: str) -> Response:
    response = json_error(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="registry-v2-policy"'
    response.headers["Connection"] = "close"  # the body may be unread
    return response


def pushreview_routes(
    judge: PushJudge,
    authenticator: Authenticator,
    authorizer: Authorizer,
    recorder: EventRecorder,
    not_ready: Callable[[], str | None],
) -> Callable[[Flask], None]:
    def add(app: Flask) -> None:
        @app.post(PATH)
        def push_review() -> Response:
            started = time.perf_counter()
            try:
                response, label = _review()
            except (ApiException, urllib3.exceptions.HTTPError) as err:
                # TokenReview or SubjectAccessReview could not be made: retryable.
                log.warning("pushreview: API server unavailable: %s", type(err).__name__)
                response = json_error(503, "cannot reach the API server to check the caller; retry")
                label = "error"
            metrics.PUSH_REVIEWS.labels(label).inc()
            metrics.PUSH_REVIEW_LATENCY.observe(time.perf_counter() - started)
            return response

    def _review() -> tuple[Response, str]:
        # Who is calling comes first: an anonymous client never makes us read its body.
        token = _bearer_token()
        if token is None:
            return _unauthorized("a bearer token is required"), "unauthenticated"
        user = authenticator.authenticate(token)
        if user is None:
            return _unauthorized("the bearer token is not valid"), "unauthenticated"
        try:
            body = read_body(MAX_BODY_BYTES)
        except RequestEntityTooLarge:
            response = json_error(400, f"request body exceeds {MAX_BODY_BYTES} bytes")
            response.headers["Connection"] = "close"
            return response, "bad_request"
        try:
            push = parse_push_review(body, request.content_type)
        except BadPushReview as err:
            return json_error(400, str(err)), "bad_request"
        if not authorizer.may_create_pushreview(user, push.namespace):
            message = (
                f'user "{user.name}" cannot create resource "pushreviews" in API group '
                f'"image.alauda.io" in the namespace "{push.namespace}"'
            )
            return json_error(403, message), "forbidden"
        reason = not_ready()
        if reason:
            verdict_allowed, why, message = False, "ServiceUnavailable", f"{reason}; retry"
        else:
            verdict = judge.judge(push)
            verdict_allowed, why, message = verdict.allowed, verdict.reason, verdict.message
        log.info(
            "pushreview ns=%s repository=%s tag=%s digest=%s user=%s allowed=%s",
            push.namespace,
            push.repository,
            push.tag or "-",
            push.digest,
            user.name,
            verdict_allowed,
        )
        if not verdict_allowed and why != "ServiceUnavailable":
            recorder.record(
                {
                    "kind": "ImageStream",
                    "apiVersion": "image.alauda.io/v1",
                    "name": push.repository,
                    "namespace": push.namespace,
                },
                "Warning",
                "PushDenied",
                f"push of {push.repository}:{push.tag or push.digest} denied: {message}",
            )
        out = answer(push, allowed=verdict_allowed, reason=why, message=message)
        return jsonify(out), "allowed" if verdict_allowed else "denied"

    return add
