"""Which key signs ServiceAccount tokens: read from the tokens the controller mints."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from controller.pullsecrets.signingkey import SigningKey, key_id_of
from quota.pullsecrets.desired_secret import SigningKeyId

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(headers: dict[str, object] | None) -> str:
    return jwt.encode({"sub": "system:serviceaccount:a:b"}, "k" * 32, headers=headers)


def test_the_key_id_is_read_from_the_token_header() -> None:
    assert key_id_of(signed({"kid": "Zp3Rk-abc"})) == "Zp3Rk-abc"


@pytest.mark.parametrize(
    "token",
    [
        signed(None),  # no kid
        b64url(b'{"alg":"RS256","kid":7}') + ".e30.c2ln",  # not a string
        "not-a-jwt",
        "e30.e30",  # no signature part
        "",
    ],
)
def test_a_token_without_a_readable_key_id_has_none(token: str) -> None:
    assert key_id_of(token) == ""


def test_every_new_key_is_announced_once_with_when_it_was_learnt() -> None:
    changes: list[SigningKeyId | None] = []
    key = SigningKey(on_change=lambda: changes.append(key.current()))
    assert key.current() is None
    assert key.observe("", T0) is False  # a token naming no key tells nothing
    assert key.observe("key-1", T0) is True
    assert key.observe("key-1", T0 + timedelta(minutes=1)) is False
    assert key.observe("key-2", T0 + timedelta(minutes=2)) is True
    assert changes == [
        SigningKeyId("key-1", T0),
        SigningKeyId("key-2", T0 + timedelta(minutes=2)),
    ]
