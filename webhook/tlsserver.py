"""gunicorn over TLS (1.2 minimum) with gthread workers, embedded so one command starts it."""

from __future__ import annotations

import logging
import os
import signal
import ssl
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)


def tls_context(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class WebhookServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose app factory runs in each worker after the fork."""

    def __init__(
        self,
        app_factory: Callable[[], Flask],
        *,
        bind: str,
        cert_file: str,
        key_file: str,
        workers: int,
        threads: int,
        on_ready: Callable[[], None] | None = None,
        log_level: str = "info",
    ) -> None:
        self._factory = app_factory
        self._options: dict[str, Any] = {
            "bind": [bind],
            "certfile": cert_file,
            "keyfile": key_file,
            "ssl_context": tls_context,
            "worker_class": "gthread",
            "workers": workers,
            "threads": threads,
            "keepalive": 30,
            "timeout": 60,
            "graceful_timeout": 20,
            "limit_request_line": 8190,
            "limit_request_fields": 100,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": log_level.lower(),
            "proc_name": "image-registry-webhook",
            "when_ready": self._when_ready,
            # gunicorn 24+ opens a control socket in $HOME by default; several servers on
            # one host would fight over it, and we have no use for it.
            "control_socket_disable": True,
        }
        self._on_ready = on_ready
        super().__init__()

    def _when_ready(self, arbiter: Any) -> None:
        if self._on_ready is None:
            return
        try:
            self._on_ready()
        except Exception:
            log.exception("start-up step failed; shutting down")
            os.kill(os.getpid(), signal.SIGTERM)

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._factory()
