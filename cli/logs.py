"""Logging set-up for every process: one line per record on stderr, JSON or text.

Every record of the process goes through the one handler set up here: ours, the
libraries', and gunicorn's (``serving.tlsserver.RootHandlerLogger`` hands its lines to
it), so a log pipeline parses one format. Structured fields (``kube.logfields``) become
JSON keys, or ``key=value`` after the message in text.

JSON comes from python-json-logger (its orjson formatter): it knows which record
attributes are the caller's extras, renders exceptions and stack traces inside the one
line, and encodes values that JSON has no type for (datetimes, exceptions), which we
would otherwise write by hand.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from kube.logfields import FIELDS_ATTRIBUTE

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LOG_LEVEL: Final = "INFO"
"""What a running service reports: one line per review and per change it makes."""
LOG_FORMATS: Final = ("json", "text")
DEFAULT_LOG_FORMAT: Final = "json"
"""One JSON object per line, what a log pipeline parses without glue."""

QUIET_BELOW_INFO: Final = ("kubernetes", "urllib3")
"""Loggers whose records below INFO are dropped whatever their level says: the kubernetes
client logs whole response bodies at DEBUG (TokenRequest answers, Secrets), urllib3 its
requests."""
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_KEYS: Final = {"levelname": "level", "name": "logger", "message": "msg"}
"""Record attributes in every JSON line, under the names log pipelines expect (klog and
controller-runtime's zap use ``msg`` and ``logger`` too); ``time`` comes first."""
_RECORD_ATTRIBUTES: Final = frozenset(RESERVED_ATTRS) | {"message", "asctime"}
_PLAIN_RECORD_KEYS: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", FIELDS_ATTRIBUTE}
"""What a record made by a logging call holds when that call passed no extra but
``fields``: such a record's line is built without python-json-logger's generic walk."""


class ClientBodiesFilter(logging.Filter):
    """Drops the HTTP client libraries' records below INFO (see ``QUIET_BELOW_INFO``).

    On the handler rather than a logger level: anything may set a logger's level again
    (the kubernetes client's ``Configuration.debug = True`` sets urllib3's to DEBUG), and
    nothing gets past the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            return True
        return not any(
            record.name == prefix or record.name.startswith(prefix + ".")
            for prefix in QUIET_BELOW_INFO
        )


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """A record's structured fields, then any other extras a library passed."""
    extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
    carried = extras.pop(FIELDS_ATTRIBUTE, None)
    return {**carried, **extras} if isinstance(carried, dict) else extras


class JsonLineFormatter(OrjsonFormatter):
    """``{"time", "level", "logger", "msg", ...fields}``; the record's own keys win over
    a field of the same name. Encoded by orjson (python-json-logger's own orjson
    formatter): the server writes a line per review, and this halves its cost."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields=JSON_KEYS,
            timestamp="time",
        )

    def format(self, record: logging.LogRecord) -> str:
        """The common record (a message and ``fields``, no exception, no stack, no other
        extra: every review's line) is built here, as python-json-logger would build it
        (a test holds the two equal) at a third of its CPU; any other goes through it."""
        if (
            record.exc_info
            or record.exc_text
            or record.stack_info
            or isinstance(record.msg, dict)
            or not record.__dict__.keys() <= _PLAIN_RECORD_KEYS
        ):
            return super().format(record)
        record.message = record.getMessage()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.message,
        }
        carried = record.__dict__.get(FIELDS_ATTRIBUTE)
        if isinstance(carried, dict):
            for key, value in carried.items():
                line.setdefault(key, value)  # the record's own keys win
        return self.jsonify_log_record(line)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        carried = log_data.pop(FIELDS_ATTRIBUTE, None)
        core = {key: log_data.pop(key) for key in ("time", *JSON_KEYS.values())}
        if isinstance(carried, dict):
            log_data = {**carried, **log_data}
        return {**core, **{k: v for k, v in log_data.items() if k not in core}}


def _logfmt(value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...``, for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        pairs = " ".join(f"{k}={_logfmt(v)}" for k, v in record_fields(record).items())
        return f"{line} {pairs}" if pairs else line


def lean_records() -> None:
    """Records skip what no line of ours prints: the caller's file, line and function
    (a walk up the stack per record), and the thread, process and multiprocessing names.
    The switches the logging HOWTO's "Optimization" section names; a review's line cost a
    third less (``bench hotpath``)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure_logging(
    level: str = DEFAULT_LOG_LEVEL,
    log_format: str = DEFAULT_LOG_FORMAT,
    *,
    stream: TextIO | None = None,
) -> None:
    """One handler on the root logger, writing ``log_format`` lines to ``stream`` (stderr;
    benchmarks pass another, to pay for the lines without printing them)."""
    lean_records()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ClientBodiesFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Python's warnings (urllib3's among them) would print lines of their own format.
    logging.captureWarnings(True)
    # Saves building the records the filter would drop anyway.
    for name in QUIET_BELOW_INFO:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
