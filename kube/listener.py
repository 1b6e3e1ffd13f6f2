"""A plain-HTTP server running on a daemon thread, and how to stop it (metrics, probes)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

DEFAULT_METRICS_BIND_ADDRESS = ":8080"
"""Plain-HTTP Prometheus metrics of every process: kubebuilder's long-standing default and
the manifests' container port ``metrics``."""
DEFAULT_HEALTH_PROBE_BIND_ADDRESS = ":8081"
"""Plain-HTTP ``/healthz`` and ``/readyz``: kubebuilder's default and the manifests'
container port ``health``."""
DISABLED = "0"
"""A bind address of ``0`` turns the listener off, as controller-runtime's flags do."""
ALL_INTERFACES = "0.0.0.0"
"""What ``:8080`` (no host) binds: every IPv4 interface; ``[::]:8080`` for IPv6."""


def parse_bind_address(value: str) -> tuple[str, int] | None:
    """``host:port``, ``:port`` (every interface) or ``[v6]:port``; None for ``0`` (off).
    Raises ValueError saying what it expects."""
    text = value.strip()
    if text == DISABLED:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expected host:port, :port or 0 (disabled); got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or ALL_INTERFACES, int(port_text)


@dataclass(frozen=True)
class Listener:
    server: Any  # a socketserver-style server: http.server's, or prometheus_client's
    thread: threading.Thread

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
