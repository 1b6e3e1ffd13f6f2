"""Bounded body reads, the drain that lets a client read our 400, and media types."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from werkzeug.exceptions import RequestEntityTooLarge

from webhook import httpjson
from webhook.httpjson import media_type, read_body

APP = Flask("test")


def read(data: bytes, max_bytes: int, *, declare_length: bool = True) -> tuple[bytes | None, int]:
    """What read_body returns (None when too large), and how much of the stream was read."""
    stream = io.BytesIO(data)
    environ: dict[str, object] = {"wsgi.input": stream}
    if declare_length:
        environ["CONTENT_LENGTH"] = str(len(data))
    else:  # chunked: the server knows where the body ends, the header does not say
        environ["wsgi.input_terminated"] = True
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    with APP.test_request_context("/", method="POST", environ_overrides=environ):
        try:
            body: bytes | None = read_body(max_bytes)
        except RequestEntityTooLarge:
            body = None
    return body, stream.tell()


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_up_to_the_limit_is_read_whole(declare_length: bool) -> None:
    assert read(b"x" * 100, 100, declare_length=declare_length) == (b"x" * 100, 100)


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_over_the_limit_is_refused_and_drained(declare_length: bool) -> None:
    body, consumed = read(b"x" * 5000, 100, declare_length=declare_length)
    assert body is None
    assert consumed == 5000, "the client, still sending, must be able to read our answer"


def test_the_drain_stops_at_its_own_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpjson, "DRAIN_LIMIT_BYTES", 300_000)
    body, consumed = read(b"x" * 1_000_000, 100)
    assert body is None
    assert consumed == 300_000


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, ""),
        ("application/json", "application/json"),
        ("APPLICATION/JSON", "application/json"),
        (" application/json ; charset=utf-8", "application/json"),
        ("application/json;charset=utf-8;q=1", "application/json"),
    ],
)
def test_media_type_is_the_type_without_parameters(content_type: str | None, expected: str) -> None:
    assert media_type(content_type) == expected
