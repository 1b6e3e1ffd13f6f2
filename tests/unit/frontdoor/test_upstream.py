"""The upstream client against a real HTTP server: what goes up, what comes down, and
that bodies are streamed rather than held."""

from __future__ import annotations

import gzip
import http.server
import io
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gunicorn.http.errors import ChunkMissingTerminator, NoMoreData

from frontdoor.upstream import (
    BODY_READ_BYTES,
    CHUNK_BYTES,
    READ_SECONDS,
    AnswerTooLarge,
    BodyIncomplete,
    Upstream,
    UpstreamResponse,
    request_body,
)
from localcluster.waiting import wait_for
from serving.tlsserver import MMAP_THRESHOLD_BYTES, ReadTimedOut

GZIPPED = gzip.compress(b"layer bytes", mtime=0)
"""One gzip member, made once: gzip.compress stamps the current second into its header, so
two calls a second apart differ (this test once failed on exactly that)."""


@dataclass
class Seen:
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    """The client port of each request: the same port is the same (reused) connection."""
    go_on: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False
    request_lines: list[str] = field(default_factory=list)
    """Each request line exactly as it arrived."""


HELD_SECONDS = 10.0
"""How long the server holds back the rest of a body before giving up on the test."""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: Seen

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    return data
                data += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        self.seen.request_lines.append(self.requestline)
        body = self._body()
        self.seen.requests.append((self.command, self.path, dict(self.headers), body))
        self.seen.ports.append(self.client_address[1])
        if self.path.endswith("/moved"):
            self.send_response(307)
            self.send_header("Location", "/v2/a/b/blobs/x")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.endswith("/gzipped"):
            payload = GZIPPED
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if self.path.endswith("/held"):
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"ab")
            self.wfile.flush()
            self.seen.timed_out = not self.seen.go_on.wait(HELD_SECONDS)
            self.wfile.write(b"cd")
            return
        if self.path.endswith("/held-chunk"):
            # One whole chunk now (the client can read it and have nothing left to read),
            # the rest only once the test says so.
            self.send_response(200)
            self.send_header("Content-Length", str(CHUNK_BYTES + 2))
            self.end_headers()
            self.wfile.write(b"h" * CHUNK_BYTES)
            self.wfile.flush()
            self.seen.timed_out = not self.seen.go_on.wait(HELD_SECONDS)
            self.wfile.write(b"!!")
            return
        if self.path.endswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"2\r\nok\r\n0\r\n\r\n")
            return
        payload = b"z" * (3 * CHUNK_BYTES + 7) if self.path.endswith("/big") else b"ok"
        self.send_response(202)
        port = self.headers["Host"].rsplit(":", 1)[1]
        self.send_header("Location", f"http://127.0.0.1:{port}/v2/a/b/x?s=1")
        self.send_header("Connection", "keep-alive")
        self.send_header("Docker-Upload-UUID", "u-1")
        self.send_header("Content-Location", f"http://127.0.0.1:{port}/v2/a/b/x")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_PATCH = do_POST = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[Upstream, Seen]]:
    seen = Seen()
    handler = type("H", (Handler,), {"seen": seen})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Upstream(f"http://127.0.0.1:{httpd.server_port}"), seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_credentials_and_hop_by_hop_headers_stay_on_their_hop(
    server: tuple[Upstream, Seen],
) -> None:
    upstream, seen = server
    answer = upstream.request(
        "GET",
        "/v2/a/b/blobs/x",
        {
            "Authorization": "Bearer secret",
            "Connection": "x-private",
            "Proxy-Authorization": "p",
            "Range": "bytes=1-2",
            "Cookie": "c",
        },
    )
    assert b"".join(answer.body) == b"ok"
    headers = seen.requests[0][2]
    assert not {"Authorization", "Proxy-Authorization", "Cookie"} & set(headers)
    assert headers["Range"] == "bytes=1-2"
    names = {name.lower() for name, _ in answer.headers}
    assert "connection" not in names and "docker-upload-uuid" in names


def test_a_location_in_the_registrys_origin_comes_back_relative(
    server: tuple[Upstream, Seen],
) -> None:
    upstream, _ = server
    answer = upstream.request("POST", "/v2/a/b/blobs/uploads/", {})
    answer.close()
    assert dict(answer.headers)["Location"] == "/v2/a/b/x?s=1"
    assert answer.status == 202


def test_a_body_of_known_length_goes_up_in_chunks_with_its_length(
    server: tuple[Upstream, Seen],
) -> None:
    upstream, seen = server
    chunks = [b"a" * 10, b"b" * 5]
    upstream.request("PUT", "/v2/a/b/blobs/uploads/u", {}, iter(chunks), 15).close()
    method, _, headers, body = seen.requests[0]
    assert (method, body, headers["Content-Length"]) == ("PUT", b"a" * 10 + b"b" * 5, "15")


def test_a_body_of_unknown_length_goes_up_chunked(server: tuple[Upstream, Seen]) -> None:
    upstream, seen = server
    upstream.request("PATCH", "/v2/a/b/blobs/uploads/u", {}, iter([b"x" * 3, b"y"])).close()
    _, _, headers, body = seen.requests[0]
    assert headers["Transfer-Encoding"] == "chunked" and body == b"xxxy"


def test_a_large_answer_comes_down_chunk_by_chunk(server: tuple[Upstream, Seen]) -> None:
    upstream, _ = server
    answer = upstream.request("GET", "/v2/a/b/blobs/big", {})
    sizes = [len(chunk) for chunk in answer.body]
    assert sum(sizes) == answer.length == 3 * CHUNK_BYTES + 7
    assert max(sizes) <= CHUNK_BYTES and len(sizes) >= 4


def test_a_connection_given_up_half_read_is_not_reused(server: tuple[Upstream, Seen]) -> None:
    upstream, seen = server
    answer = upstream.request("GET", "/v2/a/b/blobs/big", {})
    next(answer.body)
    answer.close()
    assert b"".join(upstream.request("GET", "/v2/a/b/blobs/x", {}).body) == b"ok"
    assert len(seen.requests) == 2


@pytest.mark.parametrize("segment", [".", "..", "a/../b", "./c"])
def test_the_path_goes_up_exactly_as_given_never_normalised(
    server: tuple[Upstream, Seen], segment: str
) -> None:
    """The front door checks one path and must forward that one: a client library that
    resolves dot segments (RFC 3986 5.2.4) would send the registry another."""
    upstream, seen = server
    path = f"/v2/a/b/blobs/uploads/{segment}?x=1"
    upstream.request("PATCH", path, {}, b"z").close()
    assert seen.request_lines == [f"PATCH {path} HTTP/1.1"]


def test_a_small_answer_is_read_whole_up_to_a_limit(server: tuple[Upstream, Seen]) -> None:
    upstream, _ = server
    assert upstream.read("/v2/a/b/manifests/x", {}, 10) == (202, b"ok")
    with pytest.raises(AnswerTooLarge, match="over 100 bytes"):
        upstream.read("/v2/a/b/manifests/big", {}, 100)


def test_the_request_body_reader_stops_at_the_length_or_the_end() -> None:
    assert list(request_body(io.BytesIO(b"abcdef"), 4)) == [b"abcd"]
    data = b"q" * (BODY_READ_BYTES + 3)
    assert [len(c) for c in request_body(io.BytesIO(data), None)] == [BODY_READ_BYTES, 3]


class AskedInput(io.BytesIO):
    """A WSGI input noting how much each read asks for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.asked.append(-1 if size is None else size)
        return super().read(size)


@pytest.mark.parametrize("known", [True, False])
def test_a_clients_body_is_read_a_few_tls_records_at_a_time(known: bool) -> None:
    """gunicorn copies what one read gathers, whole, more than once: reads of a few
    records keep that copying small; a body is never asked for all at once."""
    data = bytes(range(256)) * (3 * BODY_READ_BYTES // 256) + b"tail"
    stream = AskedInput(data)
    assert b"".join(request_body(stream, len(data) if known else None)) == data
    assert all(0 < size <= BODY_READ_BYTES for size in stream.asked)


def test_only_http_urls_are_upstreams() -> None:
    for bad in ("ftp://x", "registry:5000", "https://"):
        with pytest.raises(ValueError):
            Upstream(bad)


def test_no_chunk_of_a_streamed_body_is_big_enough_for_a_mapping_of_its_own(
    server: tuple[Upstream, Seen],
) -> None:
    """A chunk at the workers' mmap threshold is mapped, zero-filled and unmapped again,
    every time: bodies must stream in heap-sized chunks, both ways."""
    upstream, _ = server
    down = [sys.getsizeof(chunk) for chunk in upstream.request("GET", "/v2/a/b/blobs/big", {}).body]
    data = b"u" * (2 * MMAP_THRESHOLD_BYTES + 5)
    up = [sys.getsizeof(chunk) for chunk in request_body(io.BytesIO(data), len(data))]
    assert max(down) < MMAP_THRESHOLD_BYTES and max(up) < MMAP_THRESHOLD_BYTES


def test_a_bytes_body_goes_up_with_its_length_not_chunked(server: tuple[Upstream, Seen]) -> None:
    upstream, seen = server
    upstream.request("PUT", "/v2/a/b/manifests/v1", {"Content-Type": "t"}, b"abc").close()
    _, _, headers, body = seen.requests[0]
    assert body == b"abc"
    assert headers["Content-Length"] == "3" and "Transfer-Encoding" not in headers
    assert {name.lower() for name in headers} <= {
        "host",
        "accept-encoding",
        "user-agent",
        "content-type",
        "content-length",
    }


def test_a_redirect_is_the_clients_to_follow(server: tuple[Upstream, Seen]) -> None:
    upstream, seen = server
    answer = upstream.request("GET", "/v2/a/b/blobs/moved", {})
    answer.close()
    assert answer.status == 307 and len(seen.requests) == 1


def test_an_encoded_answer_comes_down_as_the_registry_sent_it(
    server: tuple[Upstream, Seen],
) -> None:
    upstream, _ = server
    answer = upstream.request("GET", "/v2/a/b/blobs/gzipped", {})
    assert b"".join(answer.body) == GZIPPED


def test_an_answer_without_a_length_has_none(server: tuple[Upstream, Seen]) -> None:
    upstream, _ = server
    answer = upstream.request("GET", "/v2/a/b/blobs/chunked", {})
    assert answer.length is None and b"".join(answer.body) == b"ok"


def test_a_large_answer_comes_down_in_whole_chunks(server: tuple[Upstream, Seen]) -> None:
    upstream, _ = server
    answer = upstream.request("GET", "/v2/a/b/blobs/big", {})
    assert [len(chunk) for chunk in answer.body] == [CHUNK_BYTES] * 3 + [7]


def test_a_connection_read_to_the_end_is_reused(server: tuple[Upstream, Seen]) -> None:
    upstream, seen = server
    for _ in range(2):
        assert b"".join(upstream.request("GET", "/v2/a/b/blobs/x", {}).body) == b"ok"
    assert seen.ports[0] == seen.ports[1]


def test_a_connection_given_up_half_read_is_replaced(server: tuple[Upstream, Seen]) -> None:
    upstream, seen = server
    answer = upstream.request("GET", "/v2/a/b/blobs/big", {})
    next(answer.body)
    answer.close()
    b"".join(upstream.request("GET", "/v2/a/b/blobs/x", {}).body)
    assert seen.ports[0] != seen.ports[1]


def test_only_a_location_is_made_relative(server: tuple[Upstream, Seen]) -> None:
    upstream, _ = server
    answer = upstream.request("GET", "/v2/a/b/tags/list", {})
    answer.close()
    assert dict(answer.headers)["Content-Location"] == f"{upstream.origin}/v2/a/b/x"


def test_a_multi_chunk_answer_is_read_whole_and_one_at_the_limit_passes(
    server: tuple[Upstream, Seen],
) -> None:
    upstream, _ = server
    size = 3 * CHUNK_BYTES + 7
    assert upstream.read("/v2/a/b/manifests/big", {}, size) == (202, b"z" * size)
    assert upstream.read("/v2/a/b/manifests/x", {}, 2) == (202, b"ok")


def test_closing_an_answer_closes_its_body() -> None:
    closed: list[bool] = []

    def body() -> Iterator[bytes]:
        try:
            yield b"x"
        finally:
            closed.append(True)

    stream = body()
    next(stream)
    UpstreamResponse(200, [], stream, None).close()
    assert closed == [True]


def test_a_one_byte_body_is_read() -> None:
    assert list(request_body(io.BytesIO(b"abc"), 1)) == [b"a"]


def test_https_upstreams_are_accepted_and_others_say_what_is_wanted(tmp_path: Path) -> None:
    upstream = Upstream("https://registry.example:5000/ignored")
    assert upstream.origin == "https://registry.example:5000"
    with pytest.raises(ValueError, match=r"must be http\(s\)://host\[:port\]: ftp://x"):
        Upstream("ftp://x")


def test_the_pool_never_retries_and_bounds_each_wait(tmp_path: Path) -> None:
    """A retried PUT could push twice; a silent registry must not hold a worker forever."""
    ca = tmp_path / "ca.crt"
    kw = Upstream("https://r:5000", ca_file=ca)._pool.connection_pool_kw
    assert kw["retries"].total is False and kw["block"] is False and kw["maxsize"] == 64
    assert kw["ca_certs"] == str(ca)
    assert (kw["timeout"].connect_timeout, kw["timeout"].read_timeout) == (5.0, 300.0)
    assert Upstream("https://r:5000")._pool.connection_pool_kw["ca_certs"] is None


def test_an_answer_is_handed_over_before_its_body_has_arrived(
    server: tuple[Upstream, Seen],
) -> None:
    """A blob is streamed, never read whole first: the rest of this body is only sent
    once the caller already holds the answer."""
    upstream, seen = server
    answer = upstream.request("GET", "/v2/a/b/blobs/held", {})
    seen.go_on.set()
    assert b"".join(answer.body) == b"abcd"
    assert not seen.timed_out


@pytest.mark.parametrize("chunks_read", [0, 1])
def test_a_connection_with_a_body_still_in_flight_never_serves_another_request(
    server: tuple[Upstream, Seen], chunks_read: int
) -> None:
    """Given up before the registry sent it all (a client gone mid-pull), the connection
    is dropped: pooled, the next request would read the rest of this body as its answer.
    (urllib3 itself drops a pooled connection whose leftover bytes have arrived; these are
    still on their way.)"""
    upstream, seen = server
    answer = upstream.request("GET", "/v2/a/b/blobs/held-chunk", {})
    for _ in range(chunks_read):
        assert next(answer.body) == b"h" * CHUNK_BYTES
    answer.close()
    try:
        assert b"".join(upstream.request("GET", "/v2/a/b/blobs/x", {}).body) == b"ok"
    finally:
        seen.go_on.set()
    assert seen.ports[0] != seen.ports[1]


# --- bodies that end before they are whole ----------------------------------------------

ABORT_SECONDS = READ_SECONDS / 60
"""How long an aborted request may take: at once, far below the upstream read timeout
(``READ_SECONDS``) that a request waiting for the registry's answer would wait out."""


def cut_request(upstream: Upstream, body: Iterator[bytes], length: int | None) -> BodyIncomplete:
    """Send ``body`` and return the :class:`BodyIncomplete` it ended with, failing the
    test if the request is still waiting (for the registry) after ``ABORT_SECONDS``."""
    raised: list[BaseException] = []

    def send() -> None:
        try:
            upstream.request("PATCH", "/v2/a/b/blobs/uploads/u", {}, body, length).close()
        except BaseException as err:
            raised.append(err)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    thread.join(ABORT_SECONDS)
    assert not thread.is_alive(), "the request waited for the registry's answer"
    assert len(raised) == 1 and isinstance(raised[0], BodyIncomplete), raised
    return raised[0]


def test_a_body_shorter_than_its_length_aborts_the_upstream_request_at_once(
    server: tuple[Upstream, Seen],
) -> None:
    """The client closed after 3 of 1000 bytes (gunicorn's reader then returns short):
    the registry's request is cut at once, never left waiting for the rest."""
    upstream, seen = server
    err = cut_request(upstream, request_body(io.BytesIO(b"abc"), 1000), 1000)
    assert (err.received, err.length, err.timed_out) == (3, 1000, False)
    # The registry's read of the body ended at what was sent: its connection was closed.
    wait_for(lambda: seen.requests, timeout=ABORT_SECONDS, what="the registry's request")
    assert seen.requests[0][3] == b"abc"


def test_a_connection_whose_body_was_cut_is_never_reused(server: tuple[Upstream, Seen]) -> None:
    upstream, seen = server
    assert b"".join(upstream.request("GET", "/v2/a/b/blobs/x", {}).body) == b"ok"
    cut_request(upstream, request_body(io.BytesIO(b"abc"), 1000), 1000)
    # The cut request went on the first one's pooled connection; the server sees it end
    # (it records requests as they end) before the next request is sent.
    wait_for(lambda: len(seen.ports) == 2, timeout=ABORT_SECONDS, what="the cut request")
    assert seen.ports[1] == seen.ports[0]
    assert b"".join(upstream.request("GET", "/v2/a/b/blobs/x", {}).body) == b"ok"
    assert seen.ports[2] != seen.ports[1]


class CutInput:
    """A WSGI input that gives some bytes, then fails as gunicorn's reader does."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.given = False

    def read(self, size: int = -1, /) -> bytes:
        if not self.given:
            self.given = True
            return b"ab"
        raise self.error


@pytest.mark.parametrize(
    ("error", "timed_out"),
    [
        (NoMoreData(), False),  # a chunked body cut off: gunicorn's reader hits the end
        (ChunkMissingTerminator(b"xy"), False),  # a malformed chunked body
        (ReadTimedOut(), True),  # the server's body read limit (serving.tlsserver)
    ],
)
def test_a_chunked_body_that_fails_mid_way_says_how_and_how_far(
    error: Exception, timed_out: bool
) -> None:
    chunks = request_body(CutInput(error), None)
    assert next(chunks) == b"ab"
    with pytest.raises(BodyIncomplete) as raised:
        next(chunks)
    assert (raised.value.received, raised.value.length) == (2, None)
    assert raised.value.timed_out is timed_out


def test_a_chunked_body_cut_off_aborts_the_upstream_request_at_once(
    server: tuple[Upstream, Seen],
) -> None:
    upstream, _ = server
    err = cut_request(upstream, request_body(CutInput(NoMoreData()), None), None)
    assert err.received == 2
