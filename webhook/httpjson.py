"""JSON over HTTP for every route: bounded body reads, typed JSON objects, JSON errors.

No request, however malformed, gets a 500 or a traceback: bodies are read up to a bound
and parsed into one JSON object of an expected apiVersion and kind, or refused with a
message naming the first problem.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
"""An oversized body is read and dropped up to this much, so that the client, still
sending, can read our 400; past it we just close the connection."""


def json_error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "code": status})
    response.status_code = status
    return response


def too_large(max_bytes: int) -> Response:
    """The 400 for an oversized body; the connection closes, as the body may be unread."""
    response = json_error(400, f"request body exceeds {max_bytes} bytes")
    response.headers["Connection"] = "close"
    return response


def _drain(limit: int) -> None:
    stream = request.stream
    drained = 0
    while drained < limit:
        chunk = stream.read(min(65536, limit - drained))
        if not chunk:
            return
        drained += len(chunk)


def read_body(max_bytes: int) -> bytes:
    """The request body, or RequestEntityTooLarge when it is over ``max_bytes``."""
    length = request.content_length
    if length is not None and length > max_bytes:
        _drain(DRAIN_LIMIT_BYTES)
        raise RequestEntityTooLarge()
    body = request.stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        _drain(DRAIN_LIMIT_BYTES)
        raise RequestEntityTooLarge()
    return body


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def typed_json_object(
    body: bytes,
    content_type: str | None,
    *,
    api_version: str,
    kind: str,
    error: type[ValueError],
) -> dict[str, Any]:
    """The body as a dict, or ``error`` naming the first problem (never a traceback)."""
    if media_type(content_type) != "application/json":
        raise error(
            f"unsupported content type {content_type or '(none)'!r}: expected application/json"
        )
    if not body:
        raise error(f"request body is empty: expected a {kind} in JSON")
    try:
        obj = json.loads(body)
    except RecursionError:
        raise error("request body JSON is nested too deeply") from None
    except ValueError as err:
        # Not only JSONDecodeError and UnicodeDecodeError: an integer of more than 4,300
        # digits raises a plain ValueError (CPython's int conversion limit).
        raise error(f"request body is not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise error(f"request body must be a JSON object: a {kind}")
    if obj.get("kind") != kind:
        raise error(f"kind must be {kind!r}, got {obj.get('kind')!r}")
    if obj.get("apiVersion") != api_version:
        raise error(f"apiVersion must be {api_version!r}, got {obj.get('apiVersion')!r}")
    return obj
