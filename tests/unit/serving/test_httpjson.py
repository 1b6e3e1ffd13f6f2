"""Bounded body reads, the drain that lets a client read our 400, media types, the cost
of parsing counted before parsing, and the gate on large bodies."""

from __future__ import annotations

import datetime
import decimal
import io
import json
import threading
from typing import Any
from unittest import mock

import pytest
from flask import Flask, jsonify
from hypothesis import example, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge, RequestTimeout

from serving import httpjson
from serving.httpjson import (
    BodyGate,
    JsonCost,
    JsonLimits,
    OrjsonProvider,
    ServerBusy,
    brief,
    check_cost,
    media_type,
    read_body,
    typed_json_object,
    within_limits_unscanned,
)

APP = Flask("test")
DEADLINE = 10.0


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


class Stalled:
    """A body whose client sends ``sent`` and then nothing in time: reading on fails as
    ``error`` (the socket's timeout, or the end of its data)."""

    def __init__(self, error: OSError, sent: bytes = b"") -> None:
        self.error = error
        self.sent = sent

    def read(self, size: int = -1) -> bytes:
        data, self.sent = self.sent, b""
        if not data:
            raise self.error
        return data


def read_stalled(
    error: OSError, *, declare_length: bool, sent: bytes = b""
) -> bytes | type[Exception]:
    """What read_body(1000) returns, or the class of what it raises, for a stalled body."""
    environ: dict[str, object] = {"wsgi.input": Stalled(error, sent)}
    if declare_length:  # werkzeug wraps the stream, and turns read errors into its own
        environ["CONTENT_LENGTH"] = str(len(sent) + 100)
    else:  # the server ends the body itself (gunicorn does, with or without a length)
        environ["wsgi.input_terminated"] = True
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    with APP.test_request_context("/", method="POST", environ_overrides=environ):
        try:
            return read_body(1000)
        except Exception as err:
            return type(err)


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_not_sent_in_time_is_a_request_timeout(declare_length: bool) -> None:
    timed_out = TimeoutError("the read limit is spent")
    assert read_stalled(timed_out, declare_length=declare_length) is RequestTimeout


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_cut_short_is_a_client_disconnect(declare_length: bool) -> None:
    gone = ConnectionResetError("the client went away")
    assert read_stalled(gone, declare_length=declare_length) is ClientDisconnected


@pytest.mark.parametrize("declare_length", [True, False])
def test_the_drain_of_a_body_too_large_ends_when_the_client_stalls(declare_length: bool) -> None:
    timed_out = TimeoutError("the read limit is spent")
    too_much = read_stalled(timed_out, declare_length=declare_length, sent=b"x" * 2000)
    assert too_much is RequestEntityTooLarge


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


# --- the cost of parsing, counted before parsing ------------------------------------------

json_texts = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    # Strings full of what the scan must not mistake for structure.
    | st.text(alphabet='[]{},:"\\\\ab\u00e9\u2028', max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet='[]{},"\\\\k', max_size=4), inner, max_size=4)
    ),
    max_leaves=30,
)


def structure(value: Any) -> tuple[int, int]:
    """Containers plus commas in ``value``, and its depth, from the parsed value."""
    if isinstance(value, dict | list):
        items = list(value.values()) if isinstance(value, dict) else value
        inner = [structure(item) for item in items]
        marks = 1 + max(len(items) - 1, 0) + sum(m for m, _ in inner)
        return marks, 1 + max((d for _, d in inner), default=0)
    return 0, 0


@settings(max_examples=300, deadline=None)
@given(
    value=json_texts,
    ascii_only=st.booleans(),
    chunk=st.integers(1, 20),
    escapes_split=st.sampled_from([1, 10**9]),
)
def test_the_cost_check_counts_exactly_what_parsing_builds(
    value: Any, ascii_only: bool, chunk: int, escapes_split: int
) -> None:
    """Exact, whatever the strings hold, wherever the chunks cut, and however escapes are
    taken out (piece by piece or by ``replace``): a limit one below what the text has is
    refused, the limit itself is not."""
    text = json.dumps(value, ensure_ascii=ascii_only, indent=chunk % 3 or None)
    with mock.patch.object(httpjson, "ESCAPES_SPLIT_SHARE", escapes_split):
        check_exactly(text, value, chunk)


def check_exactly(text: str, value: Any, chunk: int) -> None:
    """``text`` (``value`` as JSON) costs exactly its values and depth, and no less."""
    marks, depth = structure(value)
    values = 1 + marks
    exact = JsonLimits(max_depth=depth, max_values=values)
    assert check_cost(text, exact, chunk=chunk) == JsonCost(values, depth)
    with pytest.raises(ValueError, match=f"more than {values - 1} JSON values"):
        check_cost(text, JsonLimits(max_depth=depth, max_values=values - 1), chunk=chunk)
    if depth:
        with pytest.raises(ValueError, match=f"nested more than {depth - 1} levels"):
            check_cost(text, JsonLimits(max_depth=depth - 1, max_values=values), chunk=chunk)


ROOMY = JsonLimits(max_depth=10, max_values=100)


@pytest.mark.parametrize(
    "text",
    [
        '["a\\\\", "[[[[[[[[[[["]',  # an escaped backslash ends a string at its quote
        '["\\\\\\"[[[[[[[[[[[[", 1]',  # an escaped backslash, then an escaped quote
        '["\\u005c", "[[[[[[[[[[["]',  # a backslash written \u005c escapes nothing
    ],
)
def test_brackets_in_strings_are_no_depth(text: str) -> None:
    json.loads(text)  # valid JSON: its brackets are all in strings
    check_cost(text, ROOMY)


@pytest.mark.parametrize(
    "text",
    [
        '[1, "' + "[" * 20,  # an unterminated string holds the rest: json.loads stops there
        "[1]" + "]" * 5 + "[" * 12,  # json.loads stops at the first stray bracket
    ],
)
def test_brackets_past_where_parsing_stops_are_no_depth(text: str) -> None:
    check_cost(text, ROOMY)


def test_the_limit_the_text_reaches_first_is_the_one_reported() -> None:
    """As a parser meets them, piece by piece (values first within one piece): too deep
    early is "nested", too many values early is "values"."""
    chunk = 8
    deep_then_wide = "[" * 11 + "0," * 200 + "0" + "]" * 11
    wide_then_deep = "[" + "0," * 200 + "[" * 11 + "]" * 12
    with pytest.raises(ValueError, match="nested more than 10 levels"):
        check_cost(deep_then_wide, ROOMY, chunk=chunk)
    with pytest.raises(ValueError, match="more than 100 JSON values"):
        check_cost(wide_then_deep, ROOMY, chunk=chunk)


def test_what_json_builds_before_an_error_is_counted() -> None:
    with pytest.raises(ValueError, match="more than 100 JSON values"):
        check_cost("[" + "{}," * 100 + ' "unterminated', ROOMY)
    with pytest.raises(ValueError, match="nested more than 10 levels"):
        check_cost("[" * 11 + "}", ROOMY)


def limited(body: bytes, limits: JsonLimits = ROOMY) -> dict[str, Any]:
    return typed_json_object(
        body, "application/json", api_version="v1", kind="K", error=ValueError, limits=limits
    )


def test_a_body_over_a_limit_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^request body has more than 100 JSON values$"):
        limited(b'{"apiVersion": "v1", "kind": "K", "x": [' + b"0," * 100 + b"0]}")
    with pytest.raises(ValueError, match=r"^request body JSON is nested more than 10 levels deep$"):
        limited(b'{"apiVersion": "v1", "kind": "K", "x": ' + b"[" * 10 + b"]" * 10 + b"}")
    assert limited(b'{"apiVersion": "v1", "kind": "K", "x": [[[1]]]}')["x"] == [[[1]]]


@settings(max_examples=300, deadline=None)
# One level too deep in objects, in arrays, and one value too many in a short text.
@example(value={"k": {"k": {}}}, ascii_only=True, depth_slack=-1, values_slack=100)
@example(value=[[[]]], ascii_only=True, depth_slack=-1, values_slack=100)
@example(value=[0, 0, 0], ascii_only=True, depth_slack=0, values_slack=-1)
@given(
    value=json_texts,
    ascii_only=st.booleans(),
    depth_slack=st.integers(-3, 3),
    values_slack=st.integers(-3, 3) | st.integers(0, 10**4),
)
def test_a_body_let_through_unscanned_is_within_its_limits(
    value: Any, ascii_only: bool, depth_slack: int, values_slack: int
) -> None:
    """The shortcut never lets through what the exact count refuses, with limits around
    the text's own cost, or roomy in values (where the shortcut rests on brackets)."""
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    marks, depth = structure(value)
    limits = JsonLimits(
        max_depth=max(depth + depth_slack, 0), max_values=max(1 + marks + values_slack, 1)
    )
    if within_limits_unscanned(body, limits):
        check_cost(body, limits)


def test_a_small_body_with_few_brackets_is_parsed_without_the_exact_count() -> None:
    """A review of a ServiceAccount, a PushReview: the exact count was a fifth of their
    parse, and they cannot exceed the limits whatever they hold."""
    with mock.patch.object(httpjson, "check_cost", side_effect=AssertionError("scanned")):
        assert limited(b'{"apiVersion": "v1", "kind": "K", "x": [[1]]}')["x"] == [[1]]


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        # Past the depth in brackets, all inside a string: counted, and let through.
        (b'{"apiVersion": "v1", "kind": "K", "x": "' + b"[" * 11 + b'"}', None),
        # Too deep, and too many values, in a body short enough for either shortcut alone.
        (b'{"apiVersion": "v1", "kind": "K", "x": ' + b"[" * 9 + b"]" * 9 + b"}", "nested"),
        (b'{"apiVersion": "v1", "kind": "K", "x": [' + b"0," * 100 + b"0]}", "values"),
    ],
)
def test_a_body_the_shortcut_cannot_clear_is_counted_exactly(
    body: bytes, refusal: str | None
) -> None:
    tight = JsonLimits(max_depth=9, max_values=100)
    if refusal is None:
        assert limited(body, tight)["x"] == "[" * 11
        return
    with pytest.raises(ValueError, match=refusal):
        limited(body, tight)


@pytest.mark.parametrize("literal", [b"NaN", b"-Infinity", b'"\\ud800"'])
def test_what_rfc_8259_has_no_place_for_is_not_json(literal: bytes) -> None:
    """RFC 8259 has no NaN, Infinity or lone surrogate, and the API server's encoder (Go's)
    never writes one: a body that holds one is malformed, not a value to judge."""
    with pytest.raises(ValueError, match=r"^request body is not valid JSON: "):
        limited(b'{"apiVersion": "v1", "kind": "K", "x": ' + literal + b"}")


@pytest.mark.parametrize("body", [b'{"kind": "\xff"}', '{"kind": "K"}'.encode("utf-16")])
def test_json_is_utf_8_only(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"^request body is not valid JSON: not UTF-8 at byte"):
        limited(body)


# --- large bodies, a few at a time -----------------------------------------------------------


def test_small_bodies_need_no_slot() -> None:
    gate = BodyGate(slots=0, wait_seconds=0, small_bytes=100)
    with gate.admit(100):
        pass


@pytest.mark.parametrize("length", [101, None])
def test_a_large_body_or_one_of_unknown_length_waits_for_a_slot_then_gives_up(
    length: int | None,
) -> None:
    gate = BodyGate(slots=1, wait_seconds=0.01, small_bytes=100)
    with gate.admit(101), pytest.raises(ServerBusy), gate.admit(length):
        pass
    with gate.admit(length):  # the slot is back
        pass


def test_a_slot_is_given_back_when_the_request_fails() -> None:
    gate = BodyGate(slots=1, wait_seconds=0, small_bytes=0)
    with pytest.raises(RuntimeError), gate.admit(1):
        raise RuntimeError("handler crashed")
    with gate.admit(1):
        pass


def test_no_more_large_bodies_than_slots_are_held_at_once() -> None:
    slots, threads = 2, 8
    gate = BodyGate(slots=slots, wait_seconds=DEADLINE, small_bytes=0)
    inside = threading.Semaphore(0)
    release = threading.Event()
    held: list[int] = []
    lock = threading.Lock()

    def hold() -> None:
        with gate.admit(None):
            with lock:
                held.append(len(held) + 1)
            inside.release()
            release.wait(DEADLINE)

    workers = [threading.Thread(target=hold) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for _ in range(slots):
        assert inside.acquire(timeout=DEADLINE)
    assert not inside.acquire(timeout=0.2), "a third body got a slot"
    release.set()
    for worker in workers:
        worker.join(DEADLINE)
    assert len(held) == threads


def test_a_refused_value_is_repeated_briefly_never_whole() -> None:
    """A 3 MB ``kind`` must not come back as a 3 MB answer (and log line)."""
    huge = "K" * 3_000_000
    body = json.dumps({"apiVersion": "v1", "kind": huge}).encode()
    with pytest.raises(ValueError) as refused:
        typed_json_object(
            body,
            "application/json",
            api_version="v1",
            kind="AdmissionReview",
            error=ValueError,
            limits=JsonLimits(max_depth=4, max_values=10),
        )
    message = str(refused.value)
    assert len(message) < 200
    assert message.startswith("kind must be 'AdmissionReview', got 'KKKK")
    assert message.endswith(f"... ({len(huge) + 2} characters)")


def test_brief_keeps_short_values_whole() -> None:
    assert brief("team-a") == "'team-a'"
    assert brief("x" * 78) == repr("x" * 78)
    assert brief("x" * 79) == repr("x" * 79)[:80] + "... (81 characters)"


def test_answers_encode_the_same_values_as_flasks_own_encoder() -> None:
    """orjson for speed; what it has no type for goes to Flask's fallback, as before."""
    app = Flask("orjson")
    app.json = OrjsonProvider(app)
    value = {
        "b": [1, 2.5, None, True, "é\u2028"],
        "a": {"nested": {"x": "y"}},
        "when": datetime.date(2026, 11, 28),
        "amount": decimal.Decimal("1.5"),
    }
    with app.app_context():
        ours = jsonify(value)
    with Flask("stdlib").app_context():
        theirs = jsonify(value)
    assert ours.mimetype == theirs.mimetype == "application/json"
    assert json.loads(ours.get_data()) == json.loads(theirs.get_data())
    assert ours.get_data().endswith(b"\n")
