"""Parsers of flag values: each refuses with a message that says what it expects (argparse
prints it after the flag's name; ``cli.flags.resolve`` after the variable's)."""

from __future__ import annotations

import argparse
import ipaddress
import math
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from controller.imageprune.config import parse_go_duration
from kube.listener import parse_bind_address


def number(
    convert: Callable[[str], Any], kind: str, minimum: float, maximum: float | None = None
) -> Callable[[str], Any]:
    """A parser of ``kind`` numbers in ``[minimum, maximum]``."""
    bounds = f"at least {minimum:g}" if maximum is None else f"{minimum:g} to {maximum:g}"

    def parse(value: str) -> Any:
        try:
            parsed = convert(value.strip())
            if not math.isfinite(parsed):
                raise ValueError(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}; got {value!r}") from None
        if parsed < minimum or (maximum is not None and parsed > maximum):
            raise argparse.ArgumentTypeError(f"must be {bounds}; got {value!r}")
        return parsed

    return parse


def positive_float(value: str) -> float:
    parsed: float = number(float, "a number", 0)(value)
    if parsed <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0; got {value!r}")
    return parsed


positive_int = number(int, "an integer", 1)
non_negative_float = number(float, "a number", 0)
port = number(int, "a port number", 1, 65535)


def go_duration(value: str) -> str:
    """A Go duration (``60m``, ``1h30m``), kept as written (the plan reads it)."""
    try:
        parse_go_duration(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value.strip()


def one_of(choices: Sequence[str], *, upper: bool = False) -> Callable[[str], str]:
    """A parser of one word of ``choices`` (any case, when ``upper``: given in capitals)."""

    def parse(value: str) -> str:
        word = value.strip().upper() if upper else value
        if word not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}; got {value!r}")
        return word

    return parse


def audiences(value: str) -> tuple[str, ...]:
    """Comma-separated token audiences, at least one."""
    parsed = audience_list(value)
    if not parsed:
        raise argparse.ArgumentTypeError("needs at least one audience")
    return parsed


def audience_list(value: str) -> tuple[str, ...]:
    """Like ``audiences``, but empty is allowed (and means the API server's audiences)."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def bind_address(value: str) -> str:
    """The address as given, once ``kube.listener.parse_bind_address`` accepts it."""
    try:
        parse_bind_address(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value.strip()


def registry_url(value: str) -> str:
    """An upstream registry's base URL: ``https://host[:port]``, or ``http://`` to a
    loopback host (a registry on the same machine, in development). Both clients of it
    (``frontdoor.upstream``, ``controller.registrytags.registry``) keep only the origin, so
    a path, query or credentials would be dropped silently: refused here instead. The
    value is never echoed when it carries credentials."""
    url = value.strip()
    expected = "expected https://host[:port] (or http:// to a loopback host)"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{expected}; got {value!r}")
    if parts.username is not None or parts.password is not None:
        raise argparse.ArgumentTypeError(f"{expected}: no credentials in the URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"{expected}: no path, query or fragment; got {value!r}")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{expected}: a bad port; got {value!r}") from None
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise argparse.ArgumentTypeError(
            f"http:// only to a loopback host; elsewhere https://; got {value!r}"
        )
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
