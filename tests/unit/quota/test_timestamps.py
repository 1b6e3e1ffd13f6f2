"""Kubernetes timestamps: the strict RFC 3339 parser and the Time and MicroTime formats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.timestamps import format_micro_time, format_rfc3339, parse_rfc3339

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LEASE_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_format_rfc3339() -> None:
    assert format_rfc3339(T0) == "2025-03-01T12:00:00Z"
    assert format_rfc3339(T0 + timedelta(microseconds=5)) == "2025-03-01T12:00:00.000005Z"
    plus2 = timezone(timedelta(hours=2))
    assert format_rfc3339(T0.astimezone(plus2)) == "2025-03-01T12:00:00Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00:00Z", T0),
        ("2025-03-01t12:00:00z", T0),
        (" 2025-03-01T12:00:00Z ", T0),
        ("2025-03-01T14:00:00+02:00", T0),
        ("2025-03-01T12:00:00.5Z", T0 + timedelta(milliseconds=500)),
        ("2025-03-01T12:00:00.123456789Z", T0 + timedelta(microseconds=123456)),
    ],
)
def test_parse_rfc3339_valid(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        None,
        1740830400,
        "",
        "garbage",
        "2025-03-01",
        "2025-03-01T12:00:00",  # no offset: not guessed
        "2025-03-01 12:00:00Z",
        "20250301T120000Z",
        "2025-13-01T12:00:00Z",
        "2025-02-30T12:00:00Z",
        "2025-03-01T25:00:00Z",
        "2025-03-01T12:00:00+0200",
        "2025-W09-6T12:00:00Z",
    ],
)
def test_parse_rfc3339_invalid(value: object) -> None:
    assert parse_rfc3339(value) is None


@given(st.datetimes(timezones=st.just(UTC)))
def test_property_format_parse_round_trip(value: datetime) -> None:
    assert parse_rfc3339(format_rfc3339(value)) == value


def test_micro_time_has_six_fraction_digits_in_utc() -> None:
    assert format_micro_time(LEASE_T0) == "2026-01-01T00:00:00.000000Z"
    east = datetime(2026, 1, 1, 2, 0, 0, 1500, tzinfo=timezone(timedelta(hours=2)))
    assert format_micro_time(east) == "2026-01-01T00:00:00.001500Z"
    with pytest.raises(ValueError):
        format_micro_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00.000000Z", LEASE_T0),
        ("2026-01-01T00:00:00Z", LEASE_T0),
        ("2026-01-01T01:00:00.5+01:00", LEASE_T0 + timedelta(microseconds=500000)),
        ("2026-01-01T00:00:00.123456789Z", LEASE_T0 + timedelta(microseconds=123456)),
    ],
)
def test_parse_rfc3339_reads_lease_micro_times(text: str, expected: datetime) -> None:
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize("text", [None, "", "yesterday", 17, "2026-01-01T00:00:00"])
def test_parse_rfc3339_rejects_missing_malformed_and_naive_micro_times(text: object) -> None:
    assert parse_rfc3339(text) is None


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_rfc3339_refuses_instants_outside_the_utc_range(text: str) -> None:
    assert parse_rfc3339(text) is None


class NoOffset(tzinfo):
    """A timezone object that knows no offset: as naive as no timezone at all."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


@pytest.mark.parametrize("value", [datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=NoOffset())])
def test_naive_times_are_refused_by_name(value: datetime) -> None:
    with pytest.raises(ValueError, match=r"^value must be timezone-aware"):
        format_rfc3339(value)
    with pytest.raises(ValueError, match=r"^value must be timezone-aware"):
        format_micro_time(value)


@pytest.fixture
def local_time_is_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine whose local time is not UTC: conversions must name UTC explicitly."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_is_tokyo")
def test_times_are_written_and_read_in_utc_whatever_the_local_zone() -> None:
    berlin = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert format_rfc3339(berlin) == "2026-01-01T12:00:00Z"
    assert format_micro_time(berlin) == "2026-01-01T12:00:00.000000Z"
    parsed = parse_rfc3339("2026-01-01T13:00:00+01:00")
    assert parsed is not None and parsed.tzinfo is UTC
