"""The upstream registry, reached over a pooled keep-alive connection, bodies streamed.

A blob is never held in memory: a request body goes up as the client sends it, chunk by
chunk, and a response body comes down as the registry sends it. Hop-by-hop headers stay
on their hop (RFC 9110 section 7.6.1), and a ``Location`` the registry gives in its own
origin is made relative, so that the client's next request comes back through us.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import urlsplit

import urllib3
from gunicorn.http.errors import ParseException

CHUNK_BYTES: Final = 256 * 1024
"""Bytes per read and write of a streamed body, below the workers' mmap threshold
(``serving.tlsserver.MMAP_THRESHOLD_BYTES``) so its pages are reused: 3.9 CPU s/GiB pushed
against 5.5 at 1 MiB (``bench frontdoor``, 2 cores; docs/performance.md)."""
BODY_READ_BYTES: Final = 64 * 1024
"""Bytes asked of the WSGI input per read of a client's body (four 16 KiB TLS records):
2.2 CPU s/GiB pushed against 2.7 at 256 KiB and 2.5 at 16 KiB (``bench frontdoor``)."""
CONNECT_SECONDS: Final = 5.0
READ_SECONDS: Final = 300.0
"""How long the registry may be silent during one request: a manifest PUT of a large
image makes it check every blob, and storage backends can be slow."""
POOL_CONNECTIONS: Final = 64
"""Keep-alive connections kept per upstream: one per serving thread (``--threads``)."""

HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers about one connection, never forwarded (RFC 9110 section 7.6.1)."""
NOT_FORWARDED_UP: Final = HOP_BY_HOP | {"authorization", "host", "cookie", "content-length"}
"""The client's credentials are for us, not for the registry, which trusts the front
door; Host and Content-Length are set for the upstream request itself."""


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    headers: list[tuple[str, str]]
    body: Iterator[bytes]
    length: int | None
    """The body's length when the registry said it (Content-Length), else None."""

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


class Upstream:
    """One registry base URL (``https://host:port``), shared by a worker's threads."""

    def __init__(self, base_url: str, ca_file: Path | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream registry URL must be http(s)://host[:port]: {base_url}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=POOL_CONNECTIONS,
            block=False,
            ca_certs=str(ca_file) if ca_file else None,
            timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS),
            retries=False,
        )

    def request(
        self,
        method: str,
        path_and_query: str,
        headers: Mapping[str, str],
        body: Iterable[bytes] | bytes | None = None,
        length: int | None = None,
    ) -> UpstreamResponse:
        """Send one request; the answer's body is read only as the caller iterates it.

        ``path_and_query`` goes on the request line exactly as given (never normalised).

        ``body`` is streamed; ``length`` (the client's Content-Length) is passed on when
        known, else the body goes up chunked, as the client sent it.
        """
        outgoing = {k: v for k, v in headers.items() if k.lower() not in NOT_FORWARDED_UP}
        chunked = False
        if isinstance(body, bytes):
            outgoing["Content-Length"] = str(len(body))
        elif body is not None:
            if length is None:
                chunked = True
            else:
                outgoing["Content-Length"] = str(length)
        # The pool's own urlopen with the path alone: PoolManager.request would parse the
        # whole URL and resolve dot segments (RFC 3986 5.2.4), sending the registry another
        # path than the one the front door checked. A path is sent exactly as given.
        pool = self._pool.connection_from_url(self.origin)
        response = pool.urlopen(
            method,
            path_and_query,
            headers=outgoing,
            body=body,
            chunked=chunked,
            preload_content=False,
            decode_content=False,
            redirect=False,
        )
        length_header = response.headers.get("Content-Length")
        return UpstreamResponse(
            status=response.status,
            headers=[
                (name, self._local(name, value))
                for name, value in response.headers.items()
                if name.lower() not in HOP_BY_HOP
            ],
            body=_stream(response),
            length=int(length_header) if length_header and length_header.isdigit() else None,
        )

    def read(self, path: str, headers: Mapping[str, str], limit: int) -> tuple[int, bytes]:
        """A small answer read whole (a child manifest); :class:`AnswerTooLarge` past
        ``limit`` bytes."""
        response = self.request("GET", path, headers)
        try:
            data = bytearray()
            for chunk in response.body:
                data += chunk
                if len(data) > limit:
                    raise AnswerTooLarge(path, limit)
            return response.status, bytes(data)
        finally:
            response.close()

    def _local(self, name: str, value: str) -> str:
        """A Location in the registry's own origin, made relative to ours."""
        if name.lower() == "location" and value.startswith(self.origin + "/"):
            return value[len(self.origin) :]
        return value


class AnswerTooLarge(Exception):
    """An answer :meth:`Upstream.read` would hold whole is over its limit: what the
    registry holds there is no small document (a manifest), and the request that needed
    it is the client's to fix. Deliberately no ``ValueError``: nothing catches it by
    accident, and the front door answers it as what it is."""

    def __init__(self, path: str, limit: int) -> None:
        super().__init__(f"the registry's answer to GET {path} is over {limit} bytes")
        self.path = path
        self.limit = limit


def _stream(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The body in chunks; the connection goes back to the pool once it is all read, and
    is dropped (never reused half-read) when the client goes away first."""
    finished = False
    try:
        yield from response.stream(CHUNK_BYTES, decode_content=False)
        finished = True
    finally:
        if finished:
            response.release_conn()
        else:
            response.close()


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class BodyIncomplete(Exception):
    """The client's body ended before it was whole: fewer bytes than its Content-Length
    (the client closed: gunicorn's reader then just returns short), a chunked body cut
    off or malformed, or its bytes not sent in time.

    Raised from the body iterator while urllib3 sends it, so that urllib3 closes that
    upstream connection instead of waiting ``READ_SECONDS`` for the registry's answer to
    a request it is itself still waiting to read (and never pools it). Deliberately no
    ``OSError``: urllib3 swallows some of those while sending a body (a peer may answer
    early), and this one must reach the caller.
    """

    def __init__(self, received: int, length: int | None, *, timed_out: bool = False) -> None:
        expected = "a chunked body" if length is None else f"{length} bytes"
        how = "not sent in time" if timed_out else "cut off"
        super().__init__(f"request body {how} after {received} bytes of {expected}")
        self.received = received
        self.length = length
        self.timed_out = timed_out


def request_body(stream: Readable, length: int | None) -> Iterator[bytes]:
    """The client's request body as chunks, read from the WSGI input as it arrives;
    :class:`BodyIncomplete` when it ends before it is whole."""
    read = stream.read
    remaining = length
    received = 0
    while remaining is None or remaining > 0:
        size = BODY_READ_BYTES if remaining is None else min(BODY_READ_BYTES, remaining)
        try:
            chunk = read(size)
        except TimeoutError as err:  # the server's read limit (serving.tlsserver)
            raise BodyIncomplete(received, length, timed_out=True) from err
        except (OSError, ParseException) as err:  # a chunked body cut off, or malformed
            raise BodyIncomplete(received, length) from err
        if not chunk:
            if remaining is not None:
                raise BodyIncomplete(received, length)
            return
        received += len(chunk)
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk
