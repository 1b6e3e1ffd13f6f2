from __future__ import annotations

from datetime import timedelta

import pytest

from controller.imageprune.config import (
    MAX_GO_DURATION_NANOSECONDS,
    MAX_GO_DURATION_TEXT,
    parse_go_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60m", timedelta(minutes=60)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("24h", timedelta(days=1)),
        ("300ms", timedelta(milliseconds=300)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
    ],
)
def test_go_durations_parse_as_go_parses_them(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize("text", ["-1h", "1d", "h", "", "60", "1 h"])
def test_what_go_refuses_or_an_age_cannot_be_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="Go duration"):
        parse_go_duration(text)


def test_go_s_longest_duration_is_the_longest_accepted() -> None:
    assert parse_go_duration(MAX_GO_DURATION_TEXT) == timedelta(
        microseconds=MAX_GO_DURATION_NANOSECONDS // 1_000
    )


@pytest.mark.parametrize("text", ["99999999999999h", "2562047h47m16.854775808s", "2562048h"])
def test_a_duration_longer_than_go_s_longest_is_refused_not_overflowed(text: str) -> None:
    with pytest.raises(ValueError, match="longer than Go's longest duration, 2562047h47m16"):
        parse_go_duration(text)
