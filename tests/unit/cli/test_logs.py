"""configure_logging: one line per record on stderr, JSON or text, client bodies never."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pythonjsonlogger.orjson import OrjsonFormatter

from cli.logs import JsonLineFormatter, configure_logging
from kube.logfields import fields

LEAN_SWITCHES = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
CLIENT_LOGGERS = ("kubernetes", "kubernetes.client.rest", "urllib3", "urllib3.connectionpool")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging rewires the root logger; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in CLIENT_LOGGERS}
    switches = {name: getattr(logging, name) for name in LEAN_SWITCHES}
    yield
    for name, value in switches.items():
        setattr(logging, name, value)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(capsys)]


def test_json_is_the_default_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    logging.getLogger("webhook.test").info("hello %s", "world")
    [line] = json_lines(capsys)
    assert list(line)[:4] == ["time", "level", "logger", "msg"]
    assert line["level"] == "INFO"
    assert line["logger"] == "webhook.test"
    assert line["msg"] == "hello world"
    assert line["time"].endswith("+00:00")


def test_json_fields_are_top_level_keys_even_when_named_like_record_attributes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    extra = fields(
        uid="u-1", namespace="team-a", name="app", decision="allowed", ms=1.5, msg="spoofed"
    )
    logging.getLogger("webhook.test").info("admission", extra=extra)
    [line] = json_lines(capsys)
    assert (line["logger"], line["msg"]) == ("webhook.test", "admission"), (
        "a field never replaces the record's own keys"
    )
    assert {k: line[k] for k in ("uid", "namespace", "name", "decision", "ms")} == {
        "uid": "u-1",
        "namespace": "team-a",
        "name": "app",
        "decision": "allowed",
        "ms": 1.5,
    }
    assert "fields" not in line


def test_text_puts_fields_after_the_message_as_key_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "text")
    extra = fields(uid="u-1", name="app", message="two words", empty="", ms=1.5)
    logging.getLogger("webhook.test").info("admission", extra=extra)
    [line] = lines(capsys)
    assert line.endswith(
        ' INFO webhook.test admission uid=u-1 name=app message="two words" empty="" ms=1.5'
    )


def test_an_exception_stays_on_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("webhook.test").exception("handler failed")
    [line] = json_lines(capsys)
    assert line["msg"] == "handler failed"
    assert "ValueError: boom" in line["exc_info"]


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("logger", CLIENT_LOGGERS)
def test_client_debug_lines_never_reach_the_log_even_when_their_logger_is_set_to_debug(
    capsys: pytest.CaptureFixture[str], logger: str, log_format: str
) -> None:
    """The kubernetes client logs whole response bodies (tokens, Secrets) at DEBUG, and
    anything may set its logger's level (``Configuration.debug = True`` does)."""
    configure_logging("DEBUG", log_format)
    logging.getLogger(logger).setLevel(logging.DEBUG)
    logging.getLogger(logger).debug("response body: %s", "a-token")
    logging.getLogger(logger).info("still heard")
    out = "\n".join(lines(capsys))
    assert "a-token" not in out
    assert "still heard" in out


def test_our_own_debug_lines_are_kept_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", "json")
    logging.getLogger("kube.runner").debug("retrying")
    assert [line["msg"] for line in json_lines(capsys)] == ["retrying"]


def test_python_warnings_are_log_lines_too(capsys: pytest.CaptureFixture[str]) -> None:
    """urllib3 and others warn through ``warnings``, which would print a line of its own
    format on stderr."""
    configure_logging("INFO", "json")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("unverified HTTPS request", UserWarning, stacklevel=1)
    [line] = json_lines(capsys)
    assert line["logger"] == "py.warnings"
    assert "unverified HTTPS request" in line["msg"]


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    return logging.getLogger("webhook.admission.routes").makeRecord(
        "webhook.admission.routes", logging.INFO, "routes.py", 7, msg, args, None, extra=extra
    )


PLAIN_RECORDS = [
    record("admission"),
    record("refused a review on %s from %s", "/mutate/serviceaccounts", "10.0.0.1"),
    record(
        "admission",
        **fields(
            endpoint="/validate/imagestreams",
            uid="u-1",
            namespace="team-a",
            name="app",
            dry_run=False,
            decision="allowed",
            ms=1.5,
            labels={"a": "b"},
            when=datetime(2026, 12, 8, tzinfo=UTC),
            msg="spoofed",
            level="spoofed",
            time="spoofed",
            logger="spoofed",
        ),
    ),
]


@pytest.mark.parametrize("plain", PLAIN_RECORDS, ids=["bare", "args", "fields"])
def test_a_review_line_is_what_python_json_logger_writes(plain: logging.LogRecord) -> None:
    """The line built without python-json-logger's walk is the one it would write, key
    for key and in the same order (fields that collide with the record's keys lose)."""
    formatter = JsonLineFormatter()
    assert formatter.format(plain) == OrjsonFormatter.format(formatter, plain)


def test_a_review_line_skips_python_json_loggers_generic_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every review writes a line: the common record (message and fields) is built
    directly, a third of the library's CPU."""

    def walked(self: object, record: logging.LogRecord) -> str:
        raise AssertionError("the generic walk formatted a plain record")

    monkeypatch.setattr(OrjsonFormatter, "format", walked)
    line = json.loads(JsonLineFormatter().format(PLAIN_RECORDS[2]))
    assert (line["msg"], line["uid"], line["ms"]) == ("admission", "u-1", 1.5)


def test_records_with_an_exception_or_other_extras_still_go_through_the_library() -> None:
    formatter = JsonLineFormatter()
    other = record("admission", request_id="r-1", **fields(uid="u-1"))
    assert json.loads(formatter.format(other))["request_id"] == "r-1"
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, "f.py", 1, "failed", (), sys.exc_info()
        )
    assert "ValueError: boom" in json.loads(formatter.format(failed))["exc_info"]


def test_records_skip_the_callers_frame_and_thread_and_process_names() -> None:
    """No line prints them; looking them up was a third of a review's log line."""
    configure_logging("INFO", "json")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("webhook.lean")
    keep = Keep()
    logger.addHandler(keep)
    try:
        logger.info("admission")
    finally:
        logger.removeHandler(keep)
    [made] = seen
    assert (made.funcName, made.lineno) == ("(unknown function)", 0)
    assert (made.threadName, made.processName, made.process) == (None, None, None)
