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


def test_logs_are_json_unless_text_is_asked_for_by_flag_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parse().log_format == "json"
    assert parse_serve("--log-format=text").log_format == "text"
    monkeypatch.setenv("REGISTRY_WEBHOOK_LOG_FORMAT", "text")
    assert parse().log_format == "text"


@pytest.mark.parametrize("source", ["flag", "environment"])
def test_an_unknown_log_format_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    if source == "environment":
        monkeypatch.setenv("REGISTRY_WEBHOOK_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit):
        parse(*(["--log-format=xml"] if source == "flag" else []))
    assert "must be one of json, text" in capsys.readouterr().err
