"""gunicorn over TLS (1.2 minimum) with gthread workers, embedded so one command starts it.

A worker thread waits for a client only so long: for its TLS handshake, its request's
headers, its request's body (:class:`ReadLimits`), and not at all once it goes quiet
after its handshake (the connection goes back to the poller).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from flask import Flask
from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import _DEFER as DEFER
from gunicorn.workers.gthread import TConn, ThreadWorker

from serving.app import readiness_of

log = logging.getLogger(__name__)


REQUEST_WAIT_SECONDS = 5.0
"""How long a worker thread waits, after a connection's TLS handshake, for the request
to start; then the connection goes back to the poller and costs no thread (gunicorn's
own wait before the handshake is as long)."""


MMAP_THRESHOLD_BYTES: Final = 1024 * 1024
"""Blocks this big or bigger (request bodies, their text) get pages of their own, given
back to the OS when freed; glibc would otherwise raise the threshold to the biggest block
freed so far and keep an 8 MiB body's pages resident. Evidence: after hostile 8 MiB bodies
a worker stayed 200 MiB bigger, 20 MiB with this (test_served_parse_cost.py)."""
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


def freeze_start_up_heap() -> None:
    """Move what the worker holds before its first request (the app, the modules, the
    caches' first lists) out of the cyclic collector's reach: a full collection walks
    every tracked object, so with 20,000 cached streams each one is a pause in the middle
    of some request. Frozen objects are still freed by reference counting; only cycles
    among them would stay, and start-up makes none that it drops. Garbage is collected
    first, so that none is frozen."""
    gc.collect()
    gc.freeze()


RECV_BYTES: Final = 64 * 1024
"""Largest buffer one ``recv`` asks ``ssl`` for (a read returns one TLS record of at most
16 KiB, but ``ssl`` allocates the whole buffer first, and gunicorn asks for 1 MiB): 2.7 CPU
s/GiB pushed against 3.9 uncapped (``bench frontdoor``, 2 cores)."""
PROC_NAME: Final = "image-registry-webhook"
"""gunicorn's name for the processes in its logs (and ``ps``, where setproctitle is
installed): the command's; ``serving.server`` adds which door."""
WORKER_TIMEOUT_SECONDS: Final = 60
"""gunicorn restarts a worker silent for this long (its ``timeout``)."""
READY_WAIT_SECONDS: Final = 30.0
"""How long a (re)started worker waits for its caches before it takes connections anyway:
twice the issue's 15 s target for a cache sync at 1,000 namespaces and 20,000 streams, and
half the worker timeout (the worker reports alive meanwhile, so the bound is ours, not
gunicorn's). Past it the worker serves as a fresh one did before: unsynced answers, a
503 on ``/readyz``."""
READY_POLL_SECONDS: Final = 0.05
"""How often a waiting worker asks its caches: a sync takes a fraction of a second on a
small cluster, so the wait costs at most this much more."""


GRACEFUL_TIMEOUT_SECONDS: Final = 20
"""How long a stopping server (SIGTERM) keeps answering the requests it holds: longer
than any webhook call (``READ_SECONDS``); the manifests' ``terminationGracePeriodSeconds``
(45) covers it after their ``preStop`` pause (15 s)."""


READ_SECONDS: Final = 10.0
"""The API server gives up on a webhook call after its timeoutSeconds (10 s at most for
ours: ``webhook.registration.TIMEOUT_SECONDS``, held equal by its test), reading of the
request included: a request still arriving after that is read for no one. The API server
sends a review in one write, the registry a PushReview too."""


PROMPT_HEADER_SECONDS: Final = 1.0
"""A connection's headers must arrive within this (of waiting) once a worker's threads
are crowded by connections still waiting for theirs (``SLOW_HEADER_SHARE``). A client
sends its request's head in one write right after the handshake, so it arrives in one
round trip (at most some 300 ms across continents); a client trickling its headers, a
byte a second, is cut within a second instead of the full ``header_seconds``."""
SLOW_HEADER_SHARE: Final = 0.5
"""At most this share of a worker's threads wait out the full header limit at once; the
rest are kept for connections whose headers come promptly. 140 connections trickling a
header byte a second held every thread of a 64-thread worker for 10 s, and a viewer's
request behind them took 8-10 s (issue 17, item 8)."""


def slow_header_threads(threads: int) -> int:
    """How many of a worker's ``threads`` may wait for headers with the full limit."""
    return max(1, int(threads * SLOW_HEADER_SHARE))


class HeaderWaiters:
    """The threads of one worker now waiting for a request's headers, counted so that
    those past ``slow_header_threads`` get ``PROMPT_HEADER_SECONDS`` instead."""

    def __init__(self, allowed: int) -> None:
        self._allowed = allowed
        self._waiting = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        """One more thread waits for headers; whether the worker was already crowded."""
        with self._lock:
            crowded = self._waiting >= self._allowed
            self._waiting += 1
            return crowded

    def leave(self) -> None:
        with self._lock:
            self._waiting -= 1


@dataclass(frozen=True)
class ReadLimits:
    """How long a client may keep a worker thread waiting for each part of a request.

    The handshake's limit is on its whole duration; the headers' and the body's on the
    time spent waiting for their bytes (not the time we spend on the request, such as a
    PushReview's TokenReview before its body is read), so a client trickling a byte at a
    time gets no more than a silent one.
    """

    handshake_seconds: float = READ_SECONDS
    header_seconds: float = READ_SECONDS
    body_seconds: float = READ_SECONDS


class ReadTimedOut(NoMoreData, TimeoutError):  # type: ignore[misc]
    """A client took longer than its limit: to gunicorn, no more data (it closes the
    connection quietly); to the app reading a body, a timeout (it answers 408)."""


class ReadBudget:
    """Seconds a client may keep us waiting for its bytes, spent as it does."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._left = seconds
        self._clock = clock
        self._deadline: float | None = None

    def end_within(self, seconds: float) -> None:
        """From now on, no read waits past ``seconds`` from now, wall-clock, whatever
        budget is left: for a part that must arrive whole soon (a manifest), so that no
        pace of trickling, nor our own work between reads, stretches it."""
        deadline = self._clock() + seconds
        if self._deadline is None or deadline < self._deadline:
            self._deadline = deadline

    @contextmanager
    def waiting(self) -> Iterator[float]:
        """How long the next read may wait (TimeoutError once spent); what it waits is
        spent."""
        started = self._clock()
        left = self._left
        if self._deadline is not None:
            left = min(left, self._deadline - started)
        if left <= 0:
            raise TimeoutError("no time left to wait")
        try:
            yield left
        finally:
            self._left -= self._clock() - started


class DeadlineSocket(ssl.SSLSocket):
    """The server's TLS socket, made by its SSLContext: its handshake ends within the
    limit, and each read waits at most what is left of the current part's budget."""

    limits: ClassVar[ReadLimits] = ReadLimits()
    _budget: ReadBudget | None = None
    _part = ""
    _seconds = 0.0

    @classmethod
    def with_limits(cls, limits: ReadLimits) -> type[DeadlineSocket]:
        return type(cls.__name__, (cls,), {"limits": limits})

    def expect_headers(self, *, crowded: bool = False) -> None:
        """The request's headers come next: within ``PROMPT_HEADER_SECONDS`` when the
        worker is ``crowded`` by connections still waiting for theirs."""
        seconds = self.limits.header_seconds
        if crowded:
            seconds = min(seconds, PROMPT_HEADER_SECONDS)
        self._expect("request headers", seconds)

    def expect_body(self) -> None:
        self._expect("request body", self.limits.body_seconds)

    def limit_body(self, seconds: float) -> None:
        """The rest of this request's body must arrive within ``seconds`` from now,
        wall-clock (a route that knows its body is small: a manifest, not a layer)."""
        if self._budget is not None and self._part == "request body":
            self._budget.end_within(seconds)
            self._seconds = min(self._seconds, seconds)

    def _expect(self, part: str, seconds: float) -> None:
        self._part, self._seconds = part, seconds
        self._budget = ReadBudget(seconds)

    def do_handshake(self, block: bool = False) -> None:
        previous = self.gettimeout()
        # CPython bounds the whole handshake by the socket timeout, not each read.
        self.settimeout(self.limits.handshake_seconds)
        try:
            super().do_handshake(block)
        except TimeoutError:
            raise self._timed_out("TLS handshake", self.limits.handshake_seconds) from None
        finally:
            self.settimeout(previous)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        buflen = min(buflen, RECV_BYTES)
        budget = self._budget
        if budget is None:
            return super().recv(buflen, flags)
        previous = self.gettimeout()
        try:
            with budget.waiting() as seconds:
                self.settimeout(seconds if previous is None else min(previous, seconds))
                return super().recv(buflen, flags)
        except TimeoutError:
            raise self._timed_out(self._part, self._seconds) from None
        finally:
            self.settimeout(previous)

    def _timed_out(self, part: str, seconds: float) -> ReadTimedOut:
        try:
            host, port = self.getpeername()[:2]
            peer = f"{host}:{port}"
        except OSError:
            peer = "a gone client"
        log.info("closing the connection of %s: no %s within %g s", peer, part, seconds)
        return ReadTimedOut()


class HandshakeThenDeferWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, except that a TLS connection that says nothing after its handshake is
    handed back to the poller instead of holding a thread until the client goes away,
    that one that talks slowly is cut off (its :class:`DeadlineSocket`), and that a
    (re)started worker takes no connection before its app is ready (``ready_wait_seconds``).

    gunicorn waits for the first bytes before giving a new connection a thread, but over
    TLS those are the ClientHello: after the handshake, reading the request blocks with
    no limit, so idle connections (a client's spare pool, a scanner) starve the server;
    and a client trickling its handshake, headers or body a byte at a time held its
    thread for as long as it liked.
    """

    ready_wait_seconds: ClassVar[float] = READY_WAIT_SECONDS
    sockets: list[Any]
    _header_waiters: HeaderWaiters
    _reading_headers: threading.local

    @classmethod
    def waiting_for_ready(cls, seconds: float) -> type[HandshakeThenDeferWorker]:
        return type(cls.__name__, (cls,), {"ready_wait_seconds": seconds})

    def set_accept_enabled(self, enabled: bool) -> None:
        """On stop, leave the port at once instead of when the drain ends.

        gthread stops polling its listening sockets when the stop begins but closes them
        only after the drain; with replicas on one port (``SO_REUSEPORT``) the kernel
        keeps handing new connections to the open socket, where nobody accepts them
        until the drain ends and they are reset: an API server's webhook call waits out
        its timeout and fails the request. Closed (the arbiter closes its copy first),
        the socket leaves the port's group and new connections go to the replicas that
        stay. Those the kernel has already queued on it are accepted first and answered
        during the drain, since closing resets them; one that completes its handshake in
        the instant between the last accept and the close is still reset by the kernel,
        unless ``net.ipv4.tcp_migrate_req`` is set.

        Done here, in the main loop right after it sees the stop, and not in the SIGTERM
        handler: the handler interrupts the main thread anywhere, even in the middle of
        gthread's own ``accept`` (on a socket it would close under it) or while holding
        the thread pool's lock (which its own submit would wait for forever).
        """
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return  # paused for a full worker (worker_connections), not stopping
        listeners, self.sockets = self.sockets, []
        for listener in listeners:
            self._accept_queued(listener)
            listener.close()

    def _accept_queued(self, listener: Any) -> None:
        """Take every connection waiting in ``listener``'s queue, as gthread's ``accept``."""
        listener.setblocking(False)
        while True:
            try:
                client, address = listener.accept()
            except OSError:  # the queue is empty (EAGAIN), or the socket is gone
                return
            self.nr_conns += 1
            client.setblocking(True)
            self.enqueue_req(TConn(self.cfg, client, address, listener.getsockname()))

    def init_process(self) -> None:
        return_large_blocks_to_the_os()
        self._header_waiters = HeaderWaiters(slow_header_threads(self.cfg.threads))
        self._reading_headers = threading.local()
        super().init_process()

    def run(self) -> None:
        """Wait for the app to be ready, bounded, then take connections as gthread does:
        meanwhile the other workers, which share the listening socket, take them all."""
        self._wait_until_ready()
        super().run()

    def _wait_until_ready(self) -> None:
        not_ready = readiness_of(self.wsgi)
        deadline = time.monotonic() + self.ready_wait_seconds
        reason = not_ready()
        while reason and self.alive and time.monotonic() < deadline:
            self.notify()  # alive to the arbiter, which restarts a silent worker
            time.sleep(READY_POLL_SECONDS)
            reason = not_ready()
        if reason and self.alive:
            log.warning(
                "worker not ready after %g s (%s); taking connections anyway",
                self.ready_wait_seconds,
                reason,
            )
        freeze_start_up_heap()

    def handle(self, conn: Any) -> Any:
        if self.cfg.is_ssl and not conn.initialized:
            # At once when the poller saw data (a connection back from deferral).
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
        if not isinstance(conn.sock, DeadlineSocket):
            return super().handle(conn)
        # Counted from here until the headers are in (``handle_request``) or the
        # connection ends without them: no one is authenticated before that, so a crowd
        # of slow heads must leave threads for the prompt ones.
        conn.sock.expect_headers(crowded=self._header_waiters.enter())
        self._reading_headers.active = True
        try:
            return super().handle(conn)
        finally:
            self._headers_done()

    def handle_request(self, req: Any, conn: Any) -> Any:
        """The headers are in: from here the client's time is the body's."""
        if isinstance(conn.sock, DeadlineSocket):
            self._headers_done()
            conn.sock.expect_body()
        return super().handle_request(req, conn)

    def _headers_done(self) -> None:
        if getattr(self._reading_headers, "active", False):
            self._reading_headers.active = False
            self._header_waiters.leave()


class RootHandlerLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's error log (start-up, worker boots, worker timeouts) handed to the
    process's own handler (``cli.logs``), so it comes out in the same format as every
    other line; gunicorn's access log stays off (each admission and push has its line).

    gunicorn sets its loggers up with handlers of its own and no propagation, here undone
    after each (re)load of its configuration."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True


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


def shared_listener(bind: str) -> int:
    """A listening socket's descriptor for gunicorn (``fd://``): bound here with
    SO_REUSEPORT, so that several servers share the port (the local stack's replicas, as
    pods behind a Service), and shared by this server's workers.

    gunicorn's own ``reuse_port`` gives each worker a socket of its own instead, bound at
    the fork: the kernel then queues a share of new connections on a worker still loading
    its caches, where nobody accepts them, and resets those queued when it stops.
    """
    host, port = gunicorn_util.parse_address(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind((host, port))
    except OSError:
        listener.close()
        raise
    return listener.detach()  # gunicorn owns it now (and closes this descriptor)


class TlsServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose app factory runs in each worker after the fork.

    ``on_ready`` runs in the master once it listens (threads started there live as long
    as the master); ``on_worker_exit`` in the master after each worker's exit.
    """

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
        on_worker_exit: Callable[[int], None] | None = None,
        log_level: str = "info",
        read_limits: ReadLimits | None = None,
        ready_wait_seconds: float = READY_WAIT_SECONDS,
        proc_name: str = PROC_NAME,
    ) -> None:
        self._factory = app_factory
        self._sockets = DeadlineSocket.with_limits(read_limits or ReadLimits())
        self._reloading = ReloadingTlsContext()
        self._options: dict[str, Any] = {
            "bind": [bind],
            "certfile": cert_file,
            "keyfile": key_file,
            # Built per connection by gunicorn; ours follows the files on disk.
            "ssl_context": self._tls_context,
            # Ask every client for a certificate and verify any against the client CA;
            # optional, since PushReview callers and probes have none (the admission
            # routes insist on one: webhook.admission.callers).
            "ca_certs": client_ca_file,
            "cert_reqs": ssl.CERT_OPTIONAL if client_ca_file else ssl.CERT_NONE,
            "worker_class": HandshakeThenDeferWorker.waiting_for_ready(ready_wait_seconds),
            "workers": workers,
            "threads": threads,
            "keepalive": 30,
            "timeout": WORKER_TIMEOUT_SECONDS,
            "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
            # One listening socket shared by the workers (``run``: ``shared_listener``),
            # not one per worker.
            "reuse_port": False,
            "limit_request_line": 8190,
            "limit_request_fields": 100,
            "accesslog": None,
            "logger_class": RootHandlerLogger,
            "loglevel": log_level.lower(),
            "proc_name": proc_name,
            "when_ready": self._when_ready,
            "child_exit": self._child_exit,
            # gunicorn 24+ opens a control socket in $HOME by default; several servers on
            # one host would fight over it, and we have no use for it.
            "control_socket_disable": True,
        }
        self._on_ready = on_ready
        self._on_worker_exit = on_worker_exit
        super().__init__()

    def _tls_context(
        self, config: Any, default_factory: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        context = self._reloading(config, default_factory)
        context.sslsocket_class = self._sockets
        return context

    def _when_ready(self, arbiter: Any) -> None:
        if self._on_ready is None:
            return
        try:
            self._on_ready()
        except Exception:
            log.exception("start-up step failed; shutting down")
            os.kill(os.getpid(), signal.SIGTERM)

    def _child_exit(self, arbiter: Any, worker: Any) -> None:
        """In the master, once a worker has exited (crash, restart, stop)."""
        if self._on_worker_exit is not None:
            self._on_worker_exit(worker.pid)

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._factory()

    def run(self) -> None:
        """Bind (``shared_listener``), then run gunicorn's master until it stops."""
        self.cfg.set("bind", [f"fd://{shared_listener(self._options['bind'][0])}"])
        super().run()
