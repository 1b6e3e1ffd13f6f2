"""Plain-HTTP ``/healthz`` and ``/readyz`` for a process without a web app (the controller).

A check returns None when fine, else a short reason; ``/healthz`` (liveness: the kubelet
restarts the pod when it fails) and ``/readyz`` (readiness) each answer 200 when all of
theirs pass, 503 with the reasons otherwise, in the JSON shape the server's own probes use.
A check that raises is a failing check, never a 500.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from kube.listener import Listener, parse_bind_address

log = logging.getLogger(__name__)

Check = Callable[[], str | None]
"""Returns None when fine, else a short reason (no object contents, no secrets)."""


class Synced(Protocol):
    name: str

    def has_synced(self) -> bool: ...


def informers_synced(informers: Sequence[Synced]) -> Check:
    """Ready once every informer has listed once (a new leader then starts warm)."""

    def check() -> str | None:
        waiting = [informer.name for informer in informers if not informer.has_synced()]
        return f"caches not synced: {', '.join(waiting)}" if waiting else None

    return check


def failing(checks: Iterable[Check]) -> list[str]:
    """The reasons of every failing check, in order."""
    reasons = []
    for check in checks:
        try:
            reason = check()
        except Exception as err:  # a broken check fails the probe; its message may leak
            log.warning("health check %s raised", getattr(check, "__name__", check), exc_info=True)
            reason = f"check {getattr(check, '__name__', 'check')} failed: {type(err).__name__}"
        if reason:
            reasons.append(reason)
    return reasons


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, tuple[str, Sequence[Check]]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self._answer(404, {"error": "not found", "code": 404})
            return
        failed_status, checks = route
        reasons = failing(checks)
        if reasons:
            self._answer(503, {"status": failed_status, "reasons": reasons})
        else:
            self._answer(200, {"status": "ok"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("probe %s", format % args)  # every few seconds: not worth INFO


def serve_probes(
    address: str, *, liveness: Sequence[Check], readiness: Sequence[Check]
) -> Listener | None:
    """Serve the probes on ``address`` from a daemon thread; None when it is ``0`` (off)."""
    bind = parse_bind_address(address)
    if bind is None:
        log.info("health probes off (--health-probe-bind-address=0)")
        return None
    server = _Server(bind, _Handler)
    server.routes = {"/healthz": ("unhealthy", liveness), "/readyz": ("not ready", readiness)}
    thread = threading.Thread(target=server.serve_forever, name="health-probes", daemon=True)
    thread.start()
    listener = Listener(server, thread)
    log.info("health probes on http://%s:%d/healthz and /readyz", *listener.address)
    return listener
