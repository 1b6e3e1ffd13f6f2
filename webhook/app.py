"""The Flask application: admission routes, health, readiness and metrics.

Every route answers JSON; no request, however malformed, gets a 500 or a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from webhook import metrics
from webhook.admission import BadReview, Decision, parse_review, render_response
from webhook.admission.endpoints import AdmissionEndpoint

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""kube-apiserver caps objects near 3 MiB; a review carries object and oldObject."""

ReadinessCheck = Callable[[], str | None]
"""Returns None when ready, else a short reason."""

ExtraRoutes = Callable[[Flask], None]


def json_error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "code": status})
    response.status_code = status
    return response


DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
"""An oversized body is read and dropped up to this much, so that the client, still
sending, can read our 400; past it we just close the connection."""


def _drain(limit: int) -> None:
    stream = request.stream
    drained = 0
    while drained < limit:
        chunk = stream.read(min(65536, limit - drained))
        if not chunk:
            return
        drained += len(chunk)


def read_body(max_bytes: int) -> bytes:
    """The request body, or RequestEntityTooLarge when it is over ``max_bytes``."""
    length = request.content_length
    if length is not None and length > max_bytes:
        _drain(DRAIN_LIMIT_BYTES)
        raise RequestEntityTooLarge()
    body = request.stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        _drain(DRAIN_LIMIT_BYTES)
        raise RequestEntityTooLarge()
    return body


def create_app(
    endpoints: Iterable[AdmissionEndpoint],
    *,
    readiness: Iterable[ReadinessCheck] = (),
    extra_routes: Iterable[ExtraRoutes] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Flask:
    app = Flask("registry-webhook")
    checks = list(readiness)

    for endpoint in endpoints:
        _add_admission_route(app, endpoint, max_body_bytes)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        failing = [reason for reason in (check() for check in checks) if reason]
        if failing:
            response = jsonify({"status": "not ready", "reasons": failing})
            response.status_code = 503
            return response
        return jsonify({"status": "ok"})

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    for add in extra_routes:
        add(app)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        status = err.code or 500
        if isinstance(err, RequestEntityTooLarge):
            return json_error(400, f"request body exceeds {max_body_bytes} bytes")
        return json_error(status, err.description or err.name)

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error")

    return app


def _add_admission_route(app: Flask, endpoint: AdmissionEndpoint, max_body_bytes: int) -> None:
    def view() -> Response | tuple[Any, int]:
        started = time.perf_counter()
        try:
            review = parse_review(read_body(max_body_bytes), request.content_type)
        except RequestEntityTooLarge:
            metrics.BAD_REQUESTS.labels(endpoint.name).inc()
            response = json_error(400, f"request body exceeds {max_body_bytes} bytes")
            response.headers["Connection"] = "close"
            return response
        except BadReview as err:
            metrics.BAD_REQUESTS.labels(endpoint.name).inc()
            log.warning("rejected malformed review on %s: %s", endpoint.path, err)
            return json_error(400, str(err))
        try:
            decision = endpoint.handler(review)
            label = decision.label
        except Exception:
            log.exception(
                "handler failed on %s uid=%s %s/%s",
                endpoint.path,
                review.uid,
                review.namespace,
                review.name,
            )
            label = "error"
            if endpoint.fail_open:
                decision = Decision.allow(warnings=["registry webhook error; change not applied"])
            else:
                decision = Decision.deny(
                    "internal error in the registry policy webhook; retry the request",
                    code=500,
                    reason="InternalError",
                )
        body = render_response(review, decision, mutating=endpoint.mutating)
        elapsed = time.perf_counter() - started
        metrics.ADMISSION_REQUESTS.labels(endpoint.name, label).inc()
        metrics.ADMISSION_LATENCY.labels(endpoint.name).observe(elapsed)
        log.info(
            "admission endpoint=%s uid=%s op=%s resource=%s%s ns=%s name=%s dryRun=%s "
            "decision=%s ms=%.1f",
            endpoint.path,
            review.uid,
            review.operation,
            review.resource,
            f"/{review.sub_resource}" if review.sub_resource else "",
            review.namespace,
            review.name,
            review.dry_run,
            label,
            elapsed * 1000,
        )
        return jsonify(body)

    app.add_url_rule(endpoint.path, endpoint=endpoint.name, view_func=view, methods=["POST"])
