"""The plain-HTTP Prometheus listener of every process (``--metrics-bind-address``).

Separate from the TLS admission port so that a NetworkPolicy can open it to Prometheus
alone, and so that scrapes never take a thread the API server's calls need.
"""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from kube.listener import Listener, parse_bind_address

log = logging.getLogger(__name__)


def serve_metrics(address: str, registry: CollectorRegistry = REGISTRY) -> Listener | None:
    """Serve ``registry`` (default: this process's) on ``address`` from a daemon thread;
    None when ``address`` is ``0`` (off)."""
    bind = parse_bind_address(address)
    if bind is None:
        log.info("metrics listener off (--metrics-bind-address=0)")
        return None
    server, thread = start_http_server(bind[1], addr=bind[0], registry=registry)
    listener = Listener(server, thread)
    log.info("metrics on http://%s:%d/metrics", *listener.address)
    return listener
