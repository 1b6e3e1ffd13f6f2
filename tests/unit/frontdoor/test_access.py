"""Credentials as registry clients send them, and OpenShift's access convention."""

from __future__ import annotations

import base64

import pytest

from frontdoor.access import PULL, PUSH, Access, challenge, scope, token_from
from serving.callerreviews import User


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (basic("serviceaccount", "tok.en-1"), "tok.en-1"),
        (basic("anyone", "a:b"), "a:b"),  # only the first colon splits
        ("Bearer tok", "tok"),
        ("bearer   tok  ", "tok"),
        ("BASIC " + base64.b64encode(b"u:t").decode(), "t"),
    ],
)
def test_the_token_is_the_basic_password_or_the_bearer_value(header: str, token: str) -> None:
    assert token_from(header) == token


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        basic("user", ""),
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic not*base64",
        "Basic " + base64.b64encode(b"u:\xff").decode(),
        "Digest x",
        "Bearer " + "x" * 20_000,
    ],
)
def test_anything_else_is_no_credentials(header: str | None) -> None:
    assert token_from(header) is None


class Tokens:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def authenticate(self, token: str, source: str) -> User | None:
        self.seen.append((token, source))
        return User("system:serviceaccount:team-a:builder") if token == "good" else None


class Reviews:
    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str, str, str, str]] = []

    def may(
        self, user: User, namespace: str, verb: str, resource: str, subresource: str = ""
    ) -> bool:
        self.asked.append((namespace, verb, resource, subresource))
        return verb in self.allowed


def test_pull_asks_get_and_push_asks_update_on_imagestreams_layers() -> None:
    reviews = Reviews({"get"})
    access = Access(Tokens(), reviews)
    user = User("u")
    assert access.allowed(user, "team-a", PULL)
    assert not access.allowed(user, "team-a", PUSH)
    assert reviews.asked == [
        ("team-a", "get", "imagestreams", "layers"),
        ("team-a", "update", "imagestreams", "layers"),
    ]


def test_the_user_comes_from_a_token_review_of_the_password() -> None:
    tokens = Tokens()
    access = Access(tokens, Reviews(set()))
    assert access.user(basic("x", "good"), "10.0.0.1") == User(
        "system:serviceaccount:team-a:builder"
    )
    assert access.user("Bearer bad", "10.0.0.1") is None
    assert access.user(None, "10.0.0.1") is None
    assert tokens.seen == [("good", "10.0.0.1"), ("bad", "10.0.0.1")]


def test_the_challenge_names_the_token_endpoint_and_the_scope() -> None:
    assert challenge("https://r.example/token", "r.example", scope("team-a/app", PUSH)) == (
        'Bearer realm="https://r.example/token",service="r.example",'
        'scope="repository:team-a/app:pull,push"'
    )
    assert scope("team-a/app", PULL) == "repository:team-a/app:pull"
    assert challenge("https://r/token", "r", None) == 'Bearer realm="https://r/token",service="r"'


def test_a_header_of_exactly_the_limit_is_read() -> None:
    header = "Bearer " + "t" * (16 * 1024 - len("Bearer "))
    assert token_from(header) == "t" * (16 * 1024 - len("Bearer "))
    assert token_from(header + "t") is None


def test_basic_credentials_with_characters_outside_base64_are_refused() -> None:
    """Lenient decoding would drop the stray characters and read a password anyway."""
    encoded = base64.b64encode(b"x:token").decode()
    assert token_from(f"Basic {encoded[:4]}!{encoded[4:]}") is None
