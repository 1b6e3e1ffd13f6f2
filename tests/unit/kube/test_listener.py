"""Bind addresses of the plain-HTTP listeners, as controller-runtime's flags take them."""

from __future__ import annotations

import pytest

from kube.listener import parse_bind_address


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (":8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("localhost:9", ("localhost", 9)),
        ("[::1]:8081", ("::1", 8081)),
        ("[::]:8081", ("::", 8081)),
        ("0", None),
    ],
)
def test_bind_addresses(text: str, address: tuple[str, int] | None) -> None:
    assert parse_bind_address(text) == address


@pytest.mark.parametrize("text", ["8080", "host:", "host:port", ":65536", "", ":-1"])
def test_bad_bind_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected host:port, :port or 0"):
        parse_bind_address(text)
