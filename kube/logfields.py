"""Structured fields on a log line, for every process.

``log.info("admission", extra=fields(uid=..., namespace=..., name=...))``: the values ride
on one record attribute, so keys such as ``name`` or ``msg`` never collide with the
record's own; the process's formatter (``cli.logs``) renders them as JSON keys or as
``key=value`` after the message.
"""

from __future__ import annotations

from typing import Final

FIELDS_ATTRIBUTE: Final = "fields"
"""The LogRecord attribute that holds a line's structured fields."""


def fields(**values: object) -> dict[str, dict[str, object]]:
    """The ``extra`` argument of a logging call that carries ``values`` as fields."""
    return {FIELDS_ATTRIBUTE: values}
