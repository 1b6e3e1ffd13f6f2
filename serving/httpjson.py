"""JSON over HTTP for every route: bounded body reads, typed JSON objects, JSON errors.

No request, however malformed, gets a 500 or a traceback: bodies are read up to a bound
and parsed into one JSON object of an expected apiVersion and kind, or refused with a
message naming the first problem. Parsing is bounded too: in cost per body (depth and
number of values, counted before any Python object is built) and in large bodies handled
at once (:class:`BodyGate`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final

import orjson
from flask import Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge, RequestTimeout

DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
"""An oversized body is read and dropped up to this much, so that the client, still
sending, can read our 400; past it we just close the connection."""
LARGE_BODY_SLOTS: Final = 2
"""Large bodies read, parsed and answered at once in one worker. Parsing holds the GIL,
so a worker parses one body at a time whatever the slots; a second lets one body arrive
while another is parsed. Measured (test_served_parse_cost.py): a stream of hostile 8 MiB
bodies, 24 at a time, raises the worker's peak by some 60 MiB."""
LARGE_BODY_WAIT_SECONDS: Final = 2.0
"""How long a large body waits for a slot before a retryable 503: well inside the shortest
webhook timeout we register (5 s), so that the API server still has time to retry."""
SMALL_BODY_BYTES: Final = 16 * 1024
"""Bodies up to this size need no slot: a review of a ServiceAccount, a policy or a small
ImageStream, a PushReview of 50 layers. 64 threads each parsing one hold at most 64 x
16 KiB x 25 (the most memory per byte of JSON measured) = 25 MiB."""
RETRY_AFTER_SECONDS: Final = 1
"""Our 503s say when to retry: client-go (the API server's webhook client) retries a 503
only when it carries Retry-After."""


class ServerBusy(Exception):
    """Every slot for large bodies stayed taken for the whole wait."""


class BodyGate:
    """Bounds the large bodies a worker holds at once, across its threads.

    A large body is held from before it is read until its answer is built: as bytes, as
    text, scanned, parsed, and handled. Small bodies pass freely (the common case: the
    API server's reviews are a few KiB). A body of unknown length counts as large.
    """

    def __init__(
        self,
        *,
        slots: int = LARGE_BODY_SLOTS,
        wait_seconds: float = LARGE_BODY_WAIT_SECONDS,
        small_bytes: int = SMALL_BODY_BYTES,
    ) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._wait_seconds = wait_seconds
        self._small_bytes = small_bytes

    @contextmanager
    def admit(self, content_length: int | None) -> Iterator[None]:
        """Hold a slot for a large body; raise :class:`ServerBusy` if none frees in time."""
        if content_length is not None and content_length <= self._small_bytes:
            yield
            return
        if not self._slots.acquire(timeout=self._wait_seconds):
            raise ServerBusy(f"no slot for a large body within {self._wait_seconds:g} s")
        try:
            yield
        finally:
            self._slots.release()


ECHO_LIMIT = 80
"""Characters of a refused value an error message repeats: enough to recognise it, and a
3 MB ``kind`` never becomes a 3 MB answer and log line."""


def brief(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with a note of how long it was."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


_ORJSON_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME
"""Dates go to Flask's fallback, which writes them as HTTP dates, as before."""


class OrjsonProvider(DefaultJSONProvider):
    """``jsonify`` and ``request.get_json`` through orjson: the stdlib encoder, set up
    anew for every answer, was a tenth of a review's CPU (bench hotpath). Keys keep their
    order; what orjson cannot encode goes to Flask's own fallback (dates, decimals)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=self.default, option=_ORJSON_OPTIONS).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        body = orjson.dumps(
            self._prepare_response_obj(args, kwargs),
            default=self.default,
            option=_ORJSON_OPTIONS | orjson.OPT_APPEND_NEWLINE,
        )
        return Response(body, mimetype=self.mimetype)  # the app's class: none of its own


def json_error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "code": status})
    response.status_code = status
    return response


def server_busy() -> Response:
    """The retryable 503 for a large body that found no slot. The body is drained unread
    (no memory), or the client, still sending it, could not read the 503."""
    _drain(DRAIN_LIMIT_BYTES)
    response = json_error(503, "too many large requests at once; retry")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def request_timeout() -> Response:
    """The 408 for a body that did not arrive in time; the connection then closes."""
    response = json_error(408, "request body not received in time")
    response.headers["Connection"] = "close"
    return response


def too_large(max_bytes: int) -> Response:
    """The 400 for an oversized body; the connection closes, as the body may be unread."""
    response = json_error(400, f"request body exceeds {max_bytes} bytes")
    response.headers["Connection"] = "close"
    return response


def _drain(limit: int) -> None:
    """Read and drop what the client still sends, up to ``limit``, while it sends in time."""
    stream = request.stream
    drained = 0
    try:
        while drained < limit:
            chunk = stream.read(min(65536, limit - drained))
            if not chunk:
                return
            drained += len(chunk)
    except (OSError, ClientDisconnected):
        return


def read_body(max_bytes: int) -> bytes:
    """The request body; RequestEntityTooLarge when it is over ``max_bytes``,
    RequestTimeout when the client did not send it in time (the server's socket says)."""
    length = request.content_length
    if length is not None and length > max_bytes:
        _drain(DRAIN_LIMIT_BYTES)
        raise RequestEntityTooLarge()
    try:
        body = request.stream.read(max_bytes + 1)
    except ClientDisconnected as err:  # werkzeug's wrapper of the stream, on any read error
        if isinstance(err.__context__, TimeoutError):
            raise RequestTimeout() from None
        raise
    except TimeoutError:  # gunicorn's own stream: it ends the body, werkzeug does not wrap it
        raise RequestTimeout() from None
    except OSError:  # a chunked body cut short
        raise ClientDisconnected() from None
    if len(body) > max_bytes:
        _drain(DRAIN_LIMIT_BYTES)
        raise RequestEntityTooLarge()
    return body


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class JsonLimits:
    """What parsing one body may cost. Python holds a JSON value in 30 to 100 bytes (an
    empty dict is 64, a short string 50), besides the text of its strings: an 8 MiB
    ``[{},{},...]`` became 200 MiB. Each API sets these from its real bodies."""

    max_depth: int
    max_values: int


SCAN_CHUNK_CHARS: Final = 64 * 1024
"""The cost check reads a body in pieces this long (bytes), so that it never holds more
than a few MiB of its own however many strings the body has."""
_STRUCTURE: Final = b'"[]{},'
_NOT_STRUCTURE: Final = bytes(sorted(set(range(256)) - set(_STRUCTURE)))
_PARENS: Final = bytes.maketrans(b"[{]}", b"(())")
_STEP: Final = {ord("("): 1, ord(")"): -1}


@dataclass(frozen=True)
class JsonCost:
    values: int
    depth: int


def _deepest(parens: bytes, give_up_past: int) -> int:
    """The highest running count of open brackets in ``parens`` (only ``(`` and ``)``),
    starting at 0: exactly the nesting depth when they pair up as JSON's do.

    Pairs are removed a nesting level per pass (C-speed ``replace``): brackets of valid
    JSON vanish in as many passes as they are deep. Others (a text cut short, a stray
    closer), or more than ``give_up_past`` passes, are counted one by one.
    """
    reduced, passes = parens, 0
    while b"()" in reduced and passes <= give_up_past:
        reduced = reduced.replace(b"()", b"")
        passes += 1
    if not reduced:
        return passes
    return max(accumulate(map(_STEP.__getitem__, parens), initial=0))


ESCAPES_SPLIT_SHARE: Final = 64
"""Up to one backslash in this many bytes (real objects: managedFields keys such as
``k:{\\"name\\":\\"v1\\"}``), escapes are taken out piece by piece; denser (only made-up
bodies), by ``replace``, which costs more per byte but nothing per backslash."""


def _without_escaped(data: bytes) -> bytes:
    """``data`` without the character each backslash escapes (and, for ``\\\\``, without
    the escaped backslash): every quote left opens or closes a string, left to right as
    JSON reads escapes, so quote parity says what is inside. Other escaped characters
    (``n``, ``u``, ...) are no structure, so dropping them changes no count."""
    backslashes = data.count(b"\\")
    if not backslashes:
        return data
    if backslashes > len(data) // ESCAPES_SPLIT_SHARE:
        return data.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept: list[bytes] = []
    escaping = False  # the next byte is escaped
    for index, piece in enumerate(data.split(b"\\")):
        if index:  # a backslash came before this piece: escaped itself, or escaping
            escaping = not escaping
        if escaping and piece:
            piece, escaping = piece[1:], False
        kept.append(piece)
    return b"".join(kept)


def check_cost(text: str | bytes, limits: JsonLimits, *, chunk: int = SCAN_CHUNK_CHARS) -> JsonCost:
    """What parsing ``text`` would cost, or ValueError naming the limit it would exceed.

    Outside strings, every value but the first follows a comma or opens a container, so
    ``1 + commas + containers`` bounds the values a JSON parser would build; the running
    count of open brackets is the depth it would recurse to. Both hold for a text that is
    not JSON too: parsing stops at its first error, having built only what came before.
    A limit is reported as the text reaches it, piece by piece (values first in a piece),
    as a parser would meet it. UTF-8 bytes are read as they are: no byte of a multi-byte
    character is ASCII, so a bracket byte is a bracket. All C-speed byte operations
    (``translate`` keeps only quotes, brackets and commas): no Python object per value.
    """
    data = _without_escaped(text.encode() if isinstance(text, str) else text)
    values, inside = 1, False
    brackets: list[bytes] = []
    for start in range(0, len(data), chunk):
        marks = data[start : start + chunk].translate(None, _NOT_STRUCTURE)
        quotes = marks.count(b'"')
        if quotes or inside:
            # Two quotes in a row hold nothing between them: dropping them keeps parity.
            opened = b'"' + marks if inside else marks
            marks = b"".join(opened.replace(b'""', b"").split(b'"')[::2])
            inside ^= quotes % 2 == 1
        values += marks.count(b",") + marks.count(b"[") + marks.count(b"{")
        if values > limits.max_values:
            _check_depth(b"".join(brackets), limits)  # what came before this piece
            raise ValueError(f"has more than {limits.max_values} JSON values")
        brackets.append(marks.translate(_PARENS, b","))
    return JsonCost(values, _check_depth(b"".join(brackets), limits))


def within_limits_unscanned(body: bytes, limits: JsonLimits) -> bool:
    """True when ``body`` cannot exceed ``limits`` whatever it holds, so that the exact
    count (:func:`check_cost`, a fifth of a small review's parse) can be skipped.

    Every value but the first takes at least one byte of its own (the comma or bracket
    before it), so a body shorter than ``max_values`` has fewer values; nesting needs an
    open bracket per level, so a body with no more open brackets in all (strings too)
    than ``max_depth`` is no deeper. Two C-speed counts: true of the API server's reviews
    of a ServiceAccount and of PushReviews (under 30 brackets), false of ImageStreams with
    history, which are counted exactly.
    """
    return len(body) < limits.max_values and body.count(b"[") + body.count(b"{") <= limits.max_depth


def _check_depth(parens: bytes, limits: JsonLimits) -> int:
    depth = _deepest(parens, limits.max_depth)
    if depth > limits.max_depth:
        raise ValueError(f"JSON is nested more than {limits.max_depth} levels deep")
    return depth


def typed_json_object(
    body: bytes,
    content_type: str | None,
    *,
    api_version: str,
    kind: str,
    error: type[ValueError],
    limits: JsonLimits,
) -> dict[str, Any]:
    """The body as a dict, or ``error`` naming the first problem (never a traceback).

    JSON is read as UTF-8 only (RFC 8259 requires it between systems): the cost check
    reads bytes, and in UTF-16 a bracket's byte may be half of another character. It is
    parsed by orjson, strictly as RFC 8259 says (no NaN, Infinity or lone surrogate), at
    a third of json.loads' CPU on the API server's reviews.
    """
    if media_type(content_type) != "application/json":
        raise error(
            f"unsupported content type {content_type or '(none)'!r}: expected application/json"
        )
    if not body:
        raise error(f"request body is empty: expected a {kind} in JSON")
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(f"request body is not valid JSON: not UTF-8 at byte {err.start}") from None
    try:
        if not within_limits_unscanned(body, limits):
            check_cost(body, limits)
    except ValueError as err:
        raise error(f"request body {err}") from None
    try:
        obj = orjson.loads(body)
    except ValueError as err:  # orjson's JSONDecodeError, or anything else it refuses
        raise error(f"request body is not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise error(f"request body must be a JSON object: a {kind}")
    if obj.get("kind") != kind:
        raise error(f"kind must be {kind!r}, got {brief(obj.get('kind'))}")
    if obj.get("apiVersion") != api_version:
        raise error(f"apiVersion must be {api_version!r}, got {brief(obj.get('apiVersion'))}")
    return obj
