from __future__ import annotations

from datetime import timedelta

import pytest

from controller.imageprune.config import parse_go_duration


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
