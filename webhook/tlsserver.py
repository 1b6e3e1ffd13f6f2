"""gunicorn over TLS (1.2 minimum) with gthread workers, embedded so one command starts it."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import ssl
from collections.abc import Callable
from typing import Any, Final

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import _DEFER as DEFER
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger(__name__)


REQUEST_WAIT_SECONDS = 5.0
"""How long a worker thread waits, after a connection's TLS handshake, for the request
to start; then the connection goes back to the poller and costs no thread (gunicorn's
own wait before the handshake is as long)."""


MMAP_THRESHOLD_BYTES: Final = 1024 * 1024
"""Blocks this big or bigger (request bodies, their text) get pages of their own, given
back to the OS when freed. Left alone, glibc raises this threshold to the biggest block
freed so far (up to 32 MiB): from then on an 8 MiB body lands in a thread's heap and its
pages stay resident once it is freed. Measured (test_served_parse_cost.py): a stream of
8 MiB bodies left the worker 150 MiB bigger; 7 MiB with these settings."""
TRIM_THRESHOLD_BYTES: Final = 128 * 1024
"""Free memory at the top of a heap above this goes back to the OS: glibc's default, which
its dynamic adjustment (off once the mmap threshold is set) may already have doubled."""
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
"""mallopt's parameter numbers, from glibc's <malloc.h>."""


def return_large_blocks_to_the_os() -> None:
    """Fix glibc's thresholds (where there is glibc: the runtime image is Debian)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:
        log.debug("no mallopt in this C library; large blocks stay with the allocator")
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


class HandshakeThenDeferWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, except that a TLS connection that says nothing after its handshake is
    handed back to the poller instead of holding a thread until the client goes away.

    gunicorn waits for the first bytes before giving a new connection a thread, but over
    TLS those are the ClientHello: after the handshake, reading the request blocks with
    no limit, so idle connections (a client's spare pool, a scanner) starve the server.
    """

    def init_process(self) -> None:
        return_large_blocks_to_the_os()
        super().init_process()

    def handle(self, conn: Any) -> Any:
        if self.cfg.is_ssl and not conn.initialized and not conn.data_ready:
            if not conn.wait_for_data(REQUEST_WAIT_SECONDS):
                return DEFER
            conn.sock.setblocking(True)
            try:
                conn.init()  # the TLS handshake
            except (ssl.SSLError, OSError) as err:
                log.debug("TLS handshake failed: %s", err)
                conn.sock.close()
                return False
            conn.data_ready = False
            if not conn.sock.pending() and not conn.wait_for_data(REQUEST_WAIT_SECONDS):
                return DEFER
        return super().handle(conn)


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
            "worker_class": HandshakeThenDeferWorker,
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
