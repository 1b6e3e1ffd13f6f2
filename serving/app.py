"""The Flask application: one Blueprint per API, plus health and readiness.

Every route answers JSON; no request, however malformed, gets a 500 or a traceback.
Metrics are not here: they have their own plain-HTTP port (``kube.metricsserver``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from serving.httpjson import OrjsonProvider, json_error

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], str | None]
"""Returns None when ready, else a short reason."""


READINESS_EXTENSION = "registry_v2_readiness"
"""Where ``create_app`` keeps its readiness checks (Flask's ``app.extensions``), so that
the server can wait on them before a worker takes connections (``serving.tlsserver``)."""


def readiness_of(app: object) -> ReadinessCheck:
    """The readiness of an app ``create_app`` built: None when every check passes; any
    other WSGI app is ready at once."""
    extensions = getattr(app, "extensions", None)
    checks: list[ReadinessCheck] = []
    if isinstance(extensions, dict):
        checks = extensions.get(READINESS_EXTENSION, [])

    def not_ready() -> str | None:
        failing = [reason for reason in (check() for check in checks) if reason]
        return "; ".join(failing) if failing else None

    return not_ready


def operations_blueprint(readiness: Iterable[ReadinessCheck]) -> Blueprint:
    """``/healthz`` and ``/readyz``: what the kubelet calls."""
    checks = list(readiness)
    ops = Blueprint("operations", __name__)

    @ops.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @ops.get("/readyz")
    def readyz() -> Response:
        failing = [reason for reason in (check() for check in checks) if reason]
        if failing:
            response = jsonify({"status": "not ready", "reasons": failing})
            response.status_code = 503
            return response
        return jsonify({"status": "ok"})

    return ops


def create_app(
    apis: Iterable[Blueprint],
    *,
    readiness: Iterable[ReadinessCheck] = (),
) -> Flask:
    """The app serving ``apis`` (admission, PushReview) beside the operations endpoints.

    Each API bounds and parses its own bodies; the handlers here catch what escapes a view.
    """
    # No static folder: Flask would serve files under the working directory otherwise.
    app = Flask("registry-door", static_folder=None)
    app.json = OrjsonProvider(app)
    checks = list(readiness)
    app.extensions[READINESS_EXTENSION] = checks
    for api in apis:
        app.register_blueprint(api)
    app.register_blueprint(operations_blueprint(checks))

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        if isinstance(err, RequestEntityTooLarge):
            return json_error(400, "request body is too large")
        response = json_error(err.code or 500, err.description or err.name)
        # Keep what the error says in headers (a 405's Allow), not its HTML content type.
        for name, value in err.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error")

    return app
