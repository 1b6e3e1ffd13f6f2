"""Parsers of flag values: what each accepts as given, and how it refuses the rest."""

from __future__ import annotations

import argparse

import pytest

from cli import values


@pytest.mark.parametrize(
    "url",
    [
        "https://registry",
        "https://registry.example.com:5000/",
        "http://127.0.0.1:5000",
        "http://localhost:5000",
        "http://[::1]:5000",
    ],
)
def test_an_upstream_registry_is_https_or_http_on_loopback(url: str) -> None:
    assert values.registry_url(f" {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "registry:5000",
        "ftp://registry",
        "https://",
        "http://10.0.0.1:5000",
        "https://registry:99999",
        "https://registry/v2/",
        "https://registry?x=1",
        "https://u:p@registry",
    ],
)
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        values.registry_url(url)
