"""A plain-HTTP server running on a daemon thread, and how to stop it (metrics, probes)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


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
