"""Flags and their environment-variable defaults."""

from __future__ import annotations

import argparse

import pytest

from kube import settings


def parse(*args: str) -> settings.Settings:
    parser = argparse.ArgumentParser()
    settings.add_common_flags(parser)
    settings.add_controller_flags(parser)
    return settings.from_args(parser.parse_args(list(args)))


def parse_serve(*args: str) -> settings.Settings:
    parser = argparse.ArgumentParser()
    settings.add_common_flags(parser)
    settings.add_serve_flags(parser)
    return settings.from_args(parser.parse_args(list(args)))


def test_pull_secret_tokens_are_for_the_registry_by_default() -> None:
    assert parse().token_audiences == ["image-registry.alauda.io"]
    assert settings.Settings().token_audiences == ["image-registry.alauda.io"]


def test_token_audiences_come_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parse("--token-audiences", " a, b ,").token_audiences == ["a", "b"]
    monkeypatch.setenv("REGISTRY_WEBHOOK_TOKEN_AUDIENCES", "registry.example.com")
    assert parse().token_audiences == ["registry.example.com"]


def test_an_empty_audience_list_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--token-audiences", " , ")
    assert "needs at least one audience" in capsys.readouterr().err


def test_pushreview_callers_are_reviewed_for_the_api_servers_audiences_by_default() -> None:
    assert parse_serve().pushreview_token_audiences == []
    assert settings.Settings().pushreview_token_audiences == []


def test_pushreview_token_audiences_come_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flag = "--pushreview-token-audiences"
    assert parse_serve(flag, " a, b ,").pushreview_token_audiences == ["a", "b"]
    assert parse_serve(flag, "").pushreview_token_audiences == [], "empty: the API server's"
    monkeypatch.setenv("REGISTRY_WEBHOOK_PUSHREVIEW_TOKEN_AUDIENCES", "policy.example.com")
    assert parse_serve().pushreview_token_audiences == ["policy.example.com"]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), None, True),
        (("--manage-certificates",), None, True),
        (("--manage-certificates=false",), None, False),
        (("--manage-certificates", "False"), None, False),
        ((), "false", False),
        (("--manage-certificates=true",), "false", True),
    ],
)
def test_the_certificate_manager_is_on_unless_switched_off(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], env: str | None, expected: bool
) -> None:
    if env is not None:
        monkeypatch.setenv("REGISTRY_WEBHOOK_MANAGE_CERTIFICATES", env)
    assert parse(*args).manage_certificates is expected


def test_a_boolean_flag_refuses_what_is_not_a_boolean() -> None:
    with pytest.raises(SystemExit):
        parse("--manage-certificates=maybe")


def test_the_controller_knows_the_webhook_names_and_the_propagation_time() -> None:
    parsed = parse(
        "--service-name=svc", "--configuration-name=cfg", "--certificate-propagation-seconds=3"
    )
    assert (parsed.service_name, parsed.configuration_name) == ("svc", "cfg")
    assert parsed.certificate_propagation_seconds == 3.0
    assert (
        parse().certificate_propagation_seconds == settings.DEFAULT_CERTIFICATE_PROPAGATION_SECONDS
    )
