"""The admission Blueprint: AdmissionReview in, one handler's Decision out, as JSON.

A malformed body is a 400 naming the problem. A handler that crashes is answered by its
endpoint's failure mode (allow with a warning where a reconciler heals, else a retryable
denial), never with a 500. A large body that finds the worker busy with others is a
retryable 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Final

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

from kube.logfields import fields
from quota.decision import Cause, Decision
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
from webhook.admission import callers
from webhook.admission.endpoints import AdmissionEndpoint
from webhook.admission.review import AdmissionRequest, BadReview, parse_review, render_response

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
"""kube-apiserver caps objects near 3 MiB; a review carries object and oldObject."""


def admission_blueprint(
    endpoints: Iterable[AdmissionEndpoint],
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    gate: BodyGate | None = None,
    require_client_certificate: bool = False,
) -> Blueprint:
    """``gate`` is shared with the worker's other APIs (a gate of its own when None).
    ``require_client_certificate``: refuse reviews from anyone but the API server (see
    :mod:`webhook.admission.callers`); set when ``--client-ca-file`` is given."""
    admission = Blueprint("admission", __name__)
    gate = gate or BodyGate()
    for endpoint in endpoints:
        admission.add_url_rule(
            endpoint.path,
            endpoint=endpoint.name,
            view_func=_view(endpoint, max_body_bytes, gate, require_client_certificate),
            methods=["POST"],
        )
    return admission


def _identity(endpoint: AdmissionEndpoint, review: AdmissionRequest) -> dict[str, object]:
    """The fields that name a review on each of its log lines (never its body)."""
    return {
        "endpoint": endpoint.path,
        "uid": review.uid,
        "operation": review.operation,
        "namespace": review.namespace,
        "name": review.name,
    }


def _decide(endpoint: AdmissionEndpoint, review: AdmissionRequest) -> tuple[Decision, str]:
    """The handler's decision and its metrics label; a crash becomes the endpoint's
    failure answer, logged with the request's identity (never its body)."""
    try:
        decision = endpoint.handler(review)
        return decision, decision.label
    except Exception:
        log.exception("admission handler failed", extra=fields(**_identity(endpoint, review)))
    if endpoint.fail_open:
        return Decision.allow(warnings=["registry webhook error; change not applied"]), "error"
    return Decision.deny(
        "internal error in the registry policy webhook; retry the request", Cause.INTERNAL_ERROR
    ), "error"


def _view(
    endpoint: AdmissionEndpoint,
    max_body_bytes: int,
    gate: BodyGate,
    require_client_certificate: bool,
) -> Callable[[], Response]:
    def gated_view() -> Response:
        # Strangers are refused before they can hold one of the gate's slots.
        if require_client_certificate and not callers.has_verified_client_certificate(
            request.environ
        ):
            metrics.ADMISSION_REQUESTS.labels(endpoint.name, "unauthenticated").inc()
            log.warning(
                "refused a review on %s from %s: no verified client certificate",
                endpoint.path,
                request.remote_addr,
            )
            return callers.refused()
        try:
            with gate.admit(request.content_length):
                return view()
        except ServerBusy as busy:
            metrics.ADMISSION_REQUESTS.labels(endpoint.name, "busy").inc()
            log.warning("busy on %s: %s", endpoint.path, busy)
            return server_busy()

    answered = by_label(metrics.ADMISSION_REQUESTS, endpoint.name)
    latency = metrics.ADMISSION_LATENCY.labels(endpoint.name)

    def view() -> Response:
        started = time.perf_counter()
        try:
            review = parse_review(read_body(max_body_bytes), request.content_type)
        except RequestEntityTooLarge:
            metrics.BAD_REQUESTS.labels(endpoint.name).inc()
            return too_large(max_body_bytes)
        except RequestTimeout:
            metrics.BAD_REQUESTS.labels(endpoint.name).inc()
            return request_timeout()
        except BadReview as err:
            metrics.BAD_REQUESTS.labels(endpoint.name).inc()
            log.warning("rejected malformed review on %s: %s", endpoint.path, err)
            return json_error(400, str(err))
        decision, label = _decide(endpoint, review)
        body = render_response(review, decision, mutating=endpoint.mutating)
        elapsed = time.perf_counter() - started
        answered(label).inc()
        latency.observe(elapsed)
        identity = _identity(endpoint, review)
        resource = review.resource + (f"/{review.sub_resource}" if review.sub_resource else "")
        log.info(
            "admission",
            extra=fields(
                **identity,
                resource=resource,
                dry_run=review.dry_run,
                decision=label,
                ms=round(elapsed * 1000, 1),
            ),
        )
        return jsonify(body)

    return gated_view
