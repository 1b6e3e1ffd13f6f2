"""Kubernetes timestamps: one strict RFC 3339 parser, and the two formats the API writes.

``metav1.Time`` is RFC 3339 in UTC to the second; ``metav1.MicroTime`` (Leases) has exactly
six fractional digits. Parsing accepts either and never guesses a missing offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})", re.ASCII
)


def require_aware(**values: datetime) -> None:
    """ValueError naming the first argument that has no timezone."""
    for name, value in values.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def parse_rfc3339(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp to an aware UTC datetime; None if absent or invalid.

    Only the RFC 3339 shape is accepted (an offset is required, never guessed); fractional
    seconds beyond microseconds are truncated.
    """
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    if not _RFC3339.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):  # right shape, wrong values (month 13, year 0 in UTC)
        return None


def format_rfc3339(value: datetime) -> str:
    """UTC RFC 3339 with ``Z``; fractional seconds only when present."""
    require_aware(value=value)
    utc = value.astimezone(UTC)
    spec = "seconds" if utc.microsecond == 0 else "microseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def format_micro_time(value: datetime) -> str:
    """A ``MicroTime``: UTC RFC 3339 with exactly six fractional digits and ``Z``."""
    require_aware(value=value)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
