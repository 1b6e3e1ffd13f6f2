"""gunicorn over TLS (1.2 minimum) with gthread workers, embedded so one command starts it."""

from __future__ import annotations

import logging
import os
import signal
import ssl
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import _DEFER as DEFER
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger(__name__)


REQUEST_WAIT_SECONDS = 5.0
"""How long a worker thread waits, after a connection's TLS handshake, for the request
to start; then the connection goes back to the poller and costs no thread (gunicorn's
own wait before the handshake is as long)."""


class HandshakeThenDeferWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, except that a TLS connection that says nothing after its handshake is
    handed back to the poller instead of holding a thread until the client goes away.

    gunicorn waits for the first bytes before giving a new connection a thread, but over
    TLS those are the ClientHello: after the handshake, reading the request blocks with
    no limit, so idle connections (a client's spare pool, a scanner) starve the server.
    """

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
    """gunicorn's context with TLS 1.2 as the floor, whatever the platform allows."""
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


FileIdentity = tuple[tuple[int, int, int, int] | None, ...]


def _identity(*paths: str | None) -> FileIdentity:
    """Device, inode, mtime and size of each file, symlinks followed: a kubelet volume
    update (a new ``..data`` directory) or an in-place rewrite changes it."""
    identity: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        if not path:
            continue
        try:
            st = os.stat(path)
        except OSError:
            identity.append(None)
        else:
            identity.append((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(identity)


class ReloadingTlsContext:
    """gunicorn's ``ssl_context`` hook, which gunicorn calls for every new connection.

    The context is built again whenever the certificate, key or client CA files change on
    disk, and reused while they do not, so a renewed certificate is served to the next
    connection without a restart and an unchanged one costs a few ``stat`` calls, not a
    parse. Files that do not load together (a key that is not the certificate's: a reader
    between two swaps, or files written in place one after the other) leave the last good
    context in use until they do; only the very first load may fail.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._identity: FileIdentity | None = None
        self._context: ssl.SSLContext | None = None
        self._refused: FileIdentity | None = None

    def __call__(
        self, config: Any, default_factory: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        identity = _identity(config.certfile, config.keyfile, config.ca_certs)
        with self._lock:
            if self._context is not None and identity == self._identity:
                return self._context
            try:
                context = tls_context(config, default_factory)
            except (ssl.SSLError, OSError) as err:
                if self._context is None:
                    raise
                if identity != self._refused:
                    log.warning(
                        "certificate files changed but do not load (%s); serving the "
                        "previous ones until they do",
                        err,
                    )
                    self._refused = identity
                return self._context
            if self._context is not None:
                log.info("certificate files changed: serving the new ones")
            self._identity, self._context, self._refused = identity, context, None
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
        client_ca_file: str | None = None,
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
            # Built per connection by gunicorn; ours follows the files on disk.
            "ssl_context": ReloadingTlsContext(),
            # Ask every client for a certificate and verify any against the client CA;
            # optional, since PushReview callers and probes have none (the admission
            # routes insist on one: webhook.admission.callers).
            "ca_certs": client_ca_file,
            "cert_reqs": ssl.CERT_OPTIONAL if client_ca_file else ssl.CERT_NONE,
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
