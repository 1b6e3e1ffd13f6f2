"""The TLS layer: TLS 1.2 is our floor whatever the platform allows; certificate files
swapped on disk are served without a restart; slow clients hold a worker thread only as
long as the read limits say; gunicorn's own lines share the process's log handler."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import selectors
import signal
import socket
import ssl
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, cast

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import Flask

from cli.logs import configure_logging
from kube import certs
from localcluster.binaries import REPO_ROOT
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.secretvolume import project
from localcluster.waiting import wait_for
from serving import devcerts
from serving.tlsserver import (
    GRACEFUL_TIMEOUT_SECONDS,
    MMAP_THRESHOLD_BYTES,
    PROMPT_HEADER_SECONDS,
    DeadlineSocket,
    HandshakeThenDeferWorker,
    HeaderWaiters,
    ReadBudget,
    ReadLimits,
    ReloadingTlsContext,
    TlsServer,
    slow_header_threads,
    tls_context,
)
from tests.fuzz.server import ServerProcess
from tests.unit.serving.served import Served, serve

DEADLINE = 10.0


def permissive_factory(files: devcerts.ServingFiles) -> ssl.SSLContext:
    """What a platform with a laxer OpenSSL policy would hand gunicorn: TLS 1.0 and up,
    every cipher (security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_file, files.key_file)
    with warnings.catch_warnings():  # Python deprecates naming TLS 1.0; we mean to
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(server: ssl.SSLContext, version: ssl.TLSVersion) -> str:
    """The protocol a client pinned to ``version`` agrees with ``server`` on loopback, or
    the name of the error that refused it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        connection.settimeout(DEADLINE)
        try:
            with server.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.minimum_version = version
        client.maximum_version = version
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw,
            client.wrap_socket(raw) as tls,
        ):
            return str(tls.version())
    except ssl.SSLError as err:
        return f"refused: {err.reason}"
    finally:
        thread.join(DEADLINE)
        listener.close()


@pytest.fixture
def files(tmp_path: Path) -> devcerts.ServingFiles:
    return devcerts.ensure(tmp_path, ["127.0.0.1"])


class AskedSocket(DeadlineSocket):
    """Our server socket, noting the buffer size each read asks ssl for."""

    asked: ClassVar[list[int]] = []

    def read(self, size: int = 1024, buffer: Any = None) -> Any:
        self.asked.append(size)
        return super().read(size, buffer)


def test_a_large_recv_asks_ssl_for_no_more_than_the_heap_gives(
    files: devcerts.ServingFiles,
) -> None:
    """ssl allocates the whole buffer a recv names before it reads one record (16 KiB at
    most), and gunicorn names up to 1 MiB while reading a body: at the workers' mmap
    threshold that was a mapping of its own for every record of an upload."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.cert_file, files.key_file)
    server.sslsocket_class = type("Asked", (AskedSocket,), {"asked": []})
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    payload = os.urandom(300_000)
    ours, theirs = socket.socketpair()
    ours.settimeout(DEADLINE)
    theirs.settimeout(DEADLINE)

    def send() -> None:
        with client.wrap_socket(theirs) as tls:
            tls.sendall(payload)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = bytearray()
    with server.wrap_socket(ours, server_side=True) as tls:
        cast(DeadlineSocket, tls).expect_body()
        while len(received) < len(payload):
            chunk = tls.recv(1024 * 1024)
            if not chunk:
                break
            received += chunk
        asked = cast(AskedSocket, tls).asked
    sender.join(DEADLINE)
    assert bytes(received) == payload
    assert asked and max(asked) + sys.getsizeof(b"") < MMAP_THRESHOLD_BYTES


def test_the_platform_would_speak_tls_1_1_without_us(files: devcerts.ServingFiles) -> None:
    """Proof that the next test can fail: this machine's OpenSSL does TLS 1.1 when asked."""
    assert handshake(permissive_factory(files), ssl.TLSVersion.TLSv1_1) == "TLSv1.1"


def test_tls_1_1_is_refused_even_from_a_permissive_factory(files: devcerts.ServingFiles) -> None:
    context = tls_context(None, lambda: permissive_factory(files))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert handshake(context, ssl.TLSVersion.TLSv1_1).startswith("refused")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_spoken(files: devcerts.ServingFiles, version: ssl.TLSVersion) -> None:
    context = tls_context(None, lambda: permissive_factory(files))
    assert handshake(context, version) == version.name.replace("v1_", "v1.")


# --- slow clients, against the real server ---------------------------------------------------

LIMITS = ReadLimits(handshake_seconds=1.0, header_seconds=1.0, body_seconds=1.5)
"""Short, for a quick test; what matters is that they hold. The body's differs, so that
a body cut by the headers' limit would show."""
THREADS = 2
SLOW_CLIENTS = 2 * THREADS
"""Every thread taken by a slow client, and as many more queued behind them."""
TRICKLE_SECONDS = 0.1
"""A byte this often: a slow client is never silent long enough to look idle."""
SLACK_SECONDS = 2.0
"""On top of the limits: TLS handshakes, and the scheduling of a busy 2-core machine."""
PHASE_SECONDS = {
    "handshake": LIMITS.handshake_seconds,
    "headers": LIMITS.header_seconds,
    "body": LIMITS.body_seconds,
}
REQUEST_HEAD = (
    b"POST /validate/imagestreams HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 10000\r\n"
)


def client_hello() -> bytes:
    """The first bytes of a TLS handshake, to send one at a time."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


class SlowClient(threading.Thread):
    """Sends one part of its request (``kind``) a byte at a time, until the server closes
    the connection or the test ends."""

    def __init__(self, served: Served, kind: str) -> None:
        super().__init__(daemon=True)
        self.served = served
        self.kind = kind
        self.connected = threading.Event()
        self.done = threading.Event()
        self.closed_after: float | None = None
        self.answer = b""

    def _open(self) -> tuple[socket.socket, bytes]:
        """The connection, with everything before the slow part sent; the slow part."""
        raw = socket.create_connection(self.served.address, timeout=DEADLINE)
        self.connected.set()  # accepted in this order: ahead of what the test sends next
        if self.kind == "handshake":
            return raw, client_hello()
        tls = self.served.client_context().wrap_socket(raw, server_hostname="127.0.0.1")
        if self.kind == "headers":
            return tls, REQUEST_HEAD + b"X-Slow: " + b"a" * 1000 + b"\r\n\r\n"
        tls.sendall(REQUEST_HEAD + b"\r\n")
        return tls, b"[" + b"0," * 5000

    def run(self) -> None:
        started = time.monotonic()
        sock, slowly = self._open()
        try:
            for byte in slowly:
                if self.done.is_set():
                    return
                try:
                    sock.sendall(bytes([byte]))
                    sock.settimeout(TRICKLE_SECONDS)
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:  # reset, broken pipe, TLS alert: closed all the same
                    data = b""
                if not data:
                    self.closed_after = time.monotonic() - started
                    return
                self.answer += data
        finally:
            sock.close()


@pytest.fixture(scope="module")
def slow_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("slow"), threads=THREADS, read_limits=LIMITS) as served:
        yield served


REVIEW = json.dumps(
    {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "ServiceAccount"},
            "resource": {"group": "", "version": "v1", "resource": "serviceaccounts"},
            "operation": "CREATE",
            "namespace": "team-a",
            "object": {"metadata": {"name": "app"}},
        },
    }
).encode()


@pytest.mark.parametrize("kind", ["handshake", "headers", "body"])
def test_slow_clients_hold_a_thread_no_longer_than_the_read_limits(
    slow_served: Served, kind: str
) -> None:
    """More connections than threads each send a part of a request a byte at a time. Each
    is cut once its limit is spent, not before, so a prompt request waits for at most as
    many limits as there are slow clients per thread."""
    bound = math.ceil(SLOW_CLIENTS / THREADS) * PHASE_SECONDS[kind] + SLACK_SECONDS
    slow = [SlowClient(slow_served, kind) for _ in range(SLOW_CLIENTS)]
    try:
        for client in slow:
            client.start()
            assert client.connected.wait(DEADLINE)
        started = time.monotonic()
        try:
            response = slow_served.post(
                "/mutate/serviceaccounts",
                REVIEW,
                {"Content-Type": "application/json"},
                timeout=bound,
            )
        except requests.Timeout:
            pytest.fail(f"a prompt request waited more than {bound} s behind slow {kind}")
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert elapsed < bound
        for client in slow:
            client.join(bound)
            assert client.closed_after is not None, f"a slow {kind} connection is still open"
            assert PHASE_SECONDS[kind] <= client.closed_after < bound
            if kind == "body":
                assert client.answer.startswith(b"HTTP/1.1 408 "), client.answer[:100]
    finally:
        for client in slow:
            client.done.set()


CROWD_THREADS = 4
CROWD = 2 * CROWD_THREADS
"""Connections trickling their headers: every thread, and as many more queued."""
SERVER_LIMITS = ReadLimits()
"""The server's own: 10 s of waiting for headers."""


@pytest.fixture(scope="module")
def crowd_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("crowd")
    with serve(directory, threads=CROWD_THREADS, read_limits=SERVER_LIMITS) as served:
        yield served


def test_connections_trickling_headers_leave_threads_for_prompt_ones(
    crowd_served: Served,
) -> None:
    """Issue 17, item 8: 140 connections trickling a header byte a second held every
    thread for the whole header limit, and a prompt request waited behind them. Only
    ``slow_header_threads`` of a worker's threads wait the full limit; past them a
    connection's headers get ``PROMPT_HEADER_SECONDS``, so the queue ahead of a prompt
    request drains a prompt limit per reserved thread."""
    allowed = slow_header_threads(CROWD_THREADS)
    reserve = CROWD_THREADS - allowed
    bound = math.ceil((CROWD - allowed) / reserve) * PROMPT_HEADER_SECONDS + SLACK_SECONDS
    assert bound < SERVER_LIMITS.header_seconds  # what the slow heads took before
    slow = [SlowClient(crowd_served, "headers") for _ in range(CROWD)]
    try:
        for client in slow:
            client.start()
            assert client.connected.wait(DEADLINE)
        started = time.monotonic()
        try:
            response = crowd_served.post(
                "/mutate/serviceaccounts",
                REVIEW,
                {"Content-Type": "application/json"},
                timeout=bound,
            )
        except requests.Timeout:
            pytest.fail(f"a prompt request waited more than {bound} s behind slow headers")
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < bound
        for client in slow:
            client.join(SERVER_LIMITS.header_seconds + SLACK_SECONDS)
        cut_at = sorted(c.closed_after for c in slow if c.closed_after is not None)
        assert len(cut_at) == CROWD, "a slow head is still open"
        # The first `allowed` waited the full limit; the crowd behind them, a prompt one.
        assert all(t >= SERVER_LIMITS.header_seconds for t in cut_at[-allowed:]), cut_at
        assert all(t < bound for t in cut_at[:-allowed]), cut_at
    finally:
        for client in slow:
            client.done.set()


def test_a_worker_crowded_by_slow_heads_says_so_until_one_leaves() -> None:
    waiters = HeaderWaiters(slow_header_threads(4))
    assert [waiters.enter(), waiters.enter(), waiters.enter()] == [False, False, True]
    waiters.leave()
    waiters.leave()
    assert waiters.enter() is False
    assert [slow_header_threads(n) for n in (1, 2, 3, 64)] == [1, 1, 1, 32]


DRAINING_LIMITS = ReadLimits(body_seconds=3 * DEADLINE)
"""The in-flight request's body waits, unsent, while the test checks the refusal."""


def refused(port: int) -> bool:
    """Whether a new TCP connection to ``port`` is refused (nothing listens any more)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_answers_the_review_in_flight_and_refuses_new_connections(
    tmp_path: Path,
) -> None:
    """What the kubelet does to a pod: SIGTERM to the main process (gunicorn's arbiter).
    A review whose headers are in, its body still coming, is answered in full; meanwhile
    new connections are refused at once, not queued on a socket no one will accept from
    (with SO_REUSEPORT the kernel would keep handing them to the draining replica)."""
    with serve(tmp_path, read_limits=DRAINING_LIMITS) as served:
        tls = served.client_context().wrap_socket(
            socket.create_connection(served.address, timeout=DEADLINE),
            server_hostname="127.0.0.1",
        )
        with tls:
            # The handshake is done: a worker thread has the connection.
            tls.sendall(
                b"POST /mutate/serviceaccounts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(REVIEW)}\r\n\r\n".encode()
                + REVIEW[:10]
            )
            served.process.popen.send_signal(signal.SIGTERM)
            wait_for(
                lambda: refused(served.port),
                timeout=DEADLINE,
                interval=0.05,
                what="new connections to be refused",
            )
            tls.sendall(REVIEW[10:])
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert json.loads(body)["response"]["uid"] == "u-1"
        served.process.popen.wait(GRACEFUL_TIMEOUT_SECONDS)
        assert refused(served.port)


def test_a_draining_replica_hands_new_connections_to_the_one_that_stays(
    tmp_path: Path,
) -> None:
    """Two replicas on one port (SO_REUSEPORT, as two pods behind a Service). One gets
    SIGTERM while it holds reviews in flight; every new connection must reach the other
    at once. A draining replica whose listening socket stays open keeps receiving its
    share of new connections, which nobody accepts until the drain ends: the API
    server's webhook call would wait out its timeout and fail the request."""
    with (
        serve(tmp_path, read_limits=DRAINING_LIMITS) as staying,
        serve(tmp_path, read_limits=DRAINING_LIMITS, port=staying.port) as leaving,
    ):
        # The second replica's /healthz may have been answered by the first: wait until
        # it has its worker, which it forks once its socket has joined the port.
        wait_for(lambda: has_worker(leaving), timeout=DEADLINE, what="the second replica")
        # Reviews in flight, body still to come, spread over both replicas by the kernel
        # (by the connections' addresses): the leaving one's drain lasts while they wait.
        pending = []
        for _ in range(IN_FLIGHT):
            tls = leaving.client_context().wrap_socket(
                socket.create_connection(leaving.address, timeout=DEADLINE),
                server_hostname="127.0.0.1",
            )
            tls.sendall(
                b"POST /mutate/serviceaccounts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(REVIEW)}\r\n\r\n".encode()
                + REVIEW[:10]
            )
            pending.append(tls)
        try:
            assert listeners_on(staying.port) == 2
            leaving.process.popen.send_signal(signal.SIGTERM)
            # The kernel resets a connection that completes its handshake in the instant
            # between the worker's last accept and its close (Linux migrates it only with
            # net.ipv4.tcp_migrate_req): what we own is that the listener leaves at once.
            wait_for(
                lambda: listeners_on(staying.port) == 1,
                timeout=DEADLINE,
                what="the leaving replica to close its listening socket",
            )
            for _ in range(NEW_CONNECTIONS):
                # A new connection each time (no session), as each webhook call may be.
                response = requests.get(
                    staying.url("/healthz"),
                    verify=str(staying.ca_file),
                    timeout=ANSWER_WITHIN_SECONDS,
                )
                assert response.status_code == 200
            assert leaving.process.running(), "the leaving replica still drains"
        finally:
            for tls in pending:
                tls.close()


TCP_LISTEN = "0A"
"""The LISTEN state in ``/proc/net/tcp``."""


def listeners_on(port: int) -> int:
    """Listening sockets bound to ``port`` on IPv4, whichever process holds them."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local_ports = [
        int(fields[1].rsplit(":", 1)[1], 16)
        for fields in (row.split() for row in rows)
        if fields[3] == TCP_LISTEN
    ]
    return local_ports.count(port)


def stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped by a signal (state T in ``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] == "T"


SIGTERM_BIT = 1 << (signal.SIGTERM - 1)
"""SIGTERM in the pending-signal masks of ``/proc/PID/status``."""


def sigterm_pending(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    masks = [line.split()[1] for line in status if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(int(mask, 16) & SIGTERM_BIT for mask in masks)


def test_connections_queued_when_the_drain_starts_are_answered_not_reset(
    tmp_path: Path,
) -> None:
    """A connection the kernel queued on the listening socket just before SIGTERM (the
    worker had not accepted it yet) is accepted and answered by the draining worker.
    Closing the socket with it still queued resets it: with replicas on one port, a new
    webhook call that the kernel happened to hand to the leaving replica fails."""
    with serve(tmp_path, read_limits=DRAINING_LIMITS) as leaving:
        wait_for(lambda: has_worker(leaving), timeout=DEADLINE, what="the worker")
        worker = leaving.worker_pid()
        os.kill(worker, signal.SIGSTOP)  # nothing accepts: the next connection is queued
        try:
            # Stopped before the SIGTERM comes, so that it stays pending: one that came
            # first would be taken (its handler run later) and never be seen pending.
            wait_for(lambda: stopped(worker), timeout=DEADLINE, what="the worker to stop")
            raw = socket.create_connection(leaving.address, timeout=DEADLINE)
            leaving.process.popen.send_signal(signal.SIGTERM)  # the arbiter passes it on
            wait_for(lambda: sigterm_pending(worker), timeout=DEADLINE, what="SIGTERM")
        finally:
            os.kill(worker, signal.SIGCONT)
        with leaving.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert tls.recv(1 << 16).startswith(b"HTTP/1.1 200 ")


def stopping_worker(listener: socket.socket, *, alive: bool) -> HandshakeThenDeferWorker:
    """The worker's loop state at the moment it stops (or pauses) accepting, without a
    server: its one listening socket polled, the thread pool replaced by a list."""
    worker: Any = object.__new__(HandshakeThenDeferWorker)
    worker.cfg, worker.alive, worker.nr_conns, worker.taken = None, alive, 0, []
    worker.sockets, worker._accepting = [listener], True
    worker.poller = selectors.DefaultSelector()
    worker.poller.register(listener, selectors.EVENT_READ)
    worker.enqueue_req = worker.taken.append
    return cast(HandshakeThenDeferWorker, worker)


def test_a_stopping_worker_takes_the_queued_connections_then_leaves_the_port() -> None:
    """Connections already queued when the main loop sees the stop are taken (closing
    the socket would reset them), then the socket is closed at once, not after the
    drain, so that a replica beside it on the port gets every new connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
        worker: Any = stopping_worker(listener, alive=False)
        worker.set_accept_enabled(False)
        assert sorted(conn.client for conn in worker.taken) == sorted(
            client.getsockname() for client in clients
        )
        assert worker.nr_conns == 3
        assert listener.fileno() == -1 and worker.sockets == []
        for conn, client in zip(worker.taken, clients, strict=False):
            conn.sock.close()
            client.close()


def test_a_worker_paused_by_its_connection_limit_keeps_its_socket() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        queued = socket.create_connection(listener.getsockname())
        worker: Any = stopping_worker(listener, alive=True)
        worker.set_accept_enabled(False)
        assert worker.taken == [] and worker.sockets == [listener]
        assert listener.fileno() != -1 and not worker._accepting
        queued.close()


def has_worker(served: Served) -> bool:
    try:
        served.worker_pid()
    except LookupError:
        return False
    return True


IN_FLIGHT = 8
"""Enough that the kernel gives the leaving replica some (all 8 missing it: 1 in 256)."""
NEW_CONNECTIONS = 24
ANSWER_WITHIN_SECONDS = 3.0
"""Far inside the API server's webhook timeouts (5 and 10 s) and the drain (30 s here)."""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_read_budget_is_spent_only_while_waiting() -> None:
    clock = Clock()
    budget = ReadBudget(1.0, clock)
    with budget.waiting() as seconds:
        assert seconds == 1.0
        clock.now += 0.25
    clock.now += 60  # our own work between reads (a TokenReview) costs the client nothing
    with budget.waiting() as seconds:
        assert seconds == 0.75
        clock.now += 0.75
    with pytest.raises(TimeoutError), budget.waiting():
        pass


def test_a_read_that_times_out_spends_what_it_waited() -> None:
    clock = Clock()
    budget = ReadBudget(1.0, clock)
    with pytest.raises(TimeoutError), budget.waiting():
        clock.now += 0.5
        raise TimeoutError("the socket's own timeout")
    with budget.waiting() as seconds:
        assert seconds == 0.5


def test_a_budget_ended_within_a_time_waits_no_longer_whatever_is_left() -> None:
    """A manifest's body (frontdoor.routes) gets a wall-clock deadline: our own
    work between reads, or a trickle's pauses, no longer stretch it."""
    clock = Clock()
    budget = ReadBudget(600.0, clock)
    budget.end_within(30.0)
    with budget.waiting() as seconds:
        assert seconds == 30.0
        clock.now += 10
    clock.now += 15  # not waiting, yet it counts: the deadline is on the clock
    with budget.waiting() as seconds:
        assert seconds == 5.0
        clock.now += 5
    with pytest.raises(TimeoutError), budget.waiting():
        pass
    budget.end_within(60.0)  # a later, longer deadline never extends an earlier one
    with pytest.raises(TimeoutError), budget.waiting():
        pass


def test_only_a_body_being_read_can_be_limited() -> None:
    sock = DeadlineSocket.__new__(DeadlineSocket)  # no connection: only the budgets
    sock.expect_headers()
    sock.limit_body(0.0)  # a route's limit on a body never shortens the headers' wait
    assert sock._budget is not None
    with sock._budget.waiting() as seconds:
        assert seconds > 0
    sock.expect_body()
    sock.limit_body(0.0)
    with pytest.raises(TimeoutError), sock._budget.waiting():
        pass


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging and gunicorn's logger class rewire global loggers; undo it."""
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate)
        for name in ("", "gunicorn.error", "gunicorn.access")
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("level", ["info", "debug"])
def test_gunicorns_own_lines_go_through_the_process_handler(
    capsys: pytest.CaptureFixture[str], level: str
) -> None:
    """Start-up, worker boot and worker timeouts are gunicorn's error log: one JSON line
    each, at the level the process was given, like every other line of the process."""
    configure_logging(level, "json")
    server = TlsServer(
        lambda: Flask(__name__),
        bind="127.0.0.1:0",
        cert_file="unused.crt",
        key_file="unused.key",
        workers=1,
        threads=1,
        log_level=level,
    )
    gunicorn_log = server.cfg.logger_class(server.cfg)
    gunicorn_log.info("Booting worker with pid: %s", 42)
    gunicorn_log.critical("WORKER TIMEOUT (pid:%s)", 42)
    gunicorn_log.debug("Arbiter booted")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    expected = [
        ("INFO", "Booting worker with pid: 42"),
        ("CRITICAL", "WORKER TIMEOUT (pid:42)"),
        *([("DEBUG", "Arbiter booted")] if level == "debug" else []),
    ]
    assert [(line["level"], line["msg"]) for line in lines] == expected
    assert {line["logger"] for line in lines} == {"gunicorn.error"}


# --- certificate files swapped under a running server ---------------------------------

STARTUP_DEADLINE = 60.0
"""Importing Flask and forking the worker: seconds, several times that on 2 busy cores."""


def served_certificate(port: int) -> bytes:
    """The DER certificate the server presents to a new connection."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw,
        client.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def der(pair: certs.KeyPair) -> bytes:
    return x509.load_pem_x509_certificate(pair.cert_pem).public_bytes(serialization.Encoding.DER)


def volume_files(pair: certs.KeyPair, key: certs.KeyPair | None = None) -> dict[str, bytes]:
    return {"tls.crt": pair.cert_pem, "tls.key": (key or pair).key_pem}


@dataclass
class RunningServer:
    port: int
    volume: Path
    process: ManagedProcess
    first: certs.KeyPair

    def workers(self) -> list[int]:
        return ServerProcess("", "", self.process.pid, self.process.log_path).worker_pids()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The real gunicorn server reading its files from a kubelet-style Secret volume."""
    ca = certs.new_ca("reload-test-ca")
    first = certs.issue(ca, "first", hosts=["127.0.0.1"])
    volume = tmp_path / "tls"
    project(volume, volume_files(first))
    port = free_port()
    process = ManagedProcess(
        "tlsserver",
        [
            sys.executable,
            "-m",
            "tests.unit.serving.tlsserver_process",
            f"127.0.0.1:{port}",
            str(volume / "tls.crt"),
            str(volume / "tls.key"),
        ],
        tmp_path,
        cwd=REPO_ROOT,
    )
    try:
        wait_for(lambda: served_certificate(port), timeout=STARTUP_DEADLINE, what="the server")
        yield RunningServer(port, volume, process, first)
    finally:
        process.stop()


def test_files_swapped_on_disk_are_served_to_the_next_connection(server: RunningServer) -> None:
    assert served_certificate(server.port) == der(server.first)
    workers = server.workers()
    renewed = certs.issue(certs.new_ca("next-ca"), "renewed", hosts=["127.0.0.1"])
    project(server.volume, volume_files(renewed))
    assert served_certificate(server.port) == der(renewed)
    assert server.workers() == workers, "no worker was restarted to load them"


def test_a_key_that_is_not_the_certificates_keeps_the_last_good_pair(
    server: RunningServer,
) -> None:
    """A reader that opens tls.crt after a swap and tls.key before it (or files written in
    place one after the other) sees a mismatched pair: no handshake may fail for that."""
    renewed = certs.issue(certs.new_ca("next-ca"), "renewed", hosts=["127.0.0.1"])
    project(server.volume, volume_files(renewed, key=server.first))
    assert served_certificate(server.port) == der(server.first)
    project(server.volume, volume_files(renewed))
    assert served_certificate(server.port) == der(renewed)


def test_the_context_is_built_once_per_version_of_the_files(tmp_path: Path) -> None:
    """A handshake on unchanged files reuses the context: no parse per connection."""
    first = certs.issue(certs.new_ca("ca"), "first")
    project(tmp_path, volume_files(first))
    config = SimpleNamespace(
        certfile=str(tmp_path / "tls.crt"), keyfile=str(tmp_path / "tls.key"), ca_certs=None
    )
    built: list[ssl.SSLContext] = []

    def factory() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config.certfile, config.keyfile)
        built.append(context)
        return context

    hook = ReloadingTlsContext()
    assert hook(config, factory) is hook(config, factory) is built[0]
    project(tmp_path, volume_files(certs.issue(certs.new_ca("ca"), "second")))
    assert hook(config, factory) is built[1]
    assert built[1].minimum_version == ssl.TLSVersion.TLSv1_2
    assert len(built) == 2


def test_files_that_never_loaded_are_an_error(tmp_path: Path) -> None:
    """Only a context that once loaded may stand in for files that do not."""
    first = certs.issue(certs.new_ca("ca"), "first")
    project(tmp_path, {"tls.crt": first.cert_pem, "tls.key": certs.new_ca("x").key_pem})
    config = SimpleNamespace(
        certfile=str(tmp_path / "tls.crt"), keyfile=str(tmp_path / "tls.key"), ca_certs=None
    )

    def factory() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config.certfile, config.keyfile)
        return context

    with pytest.raises(ssl.SSLError):
        ReloadingTlsContext()(config, factory)
