"""Flags and their environment-variable defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kube import settings
from kube.flags import FlagError, resolve


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


def parse_with_notices(*args: str, env: dict[str, str]) -> tuple[settings.Settings, list[str]]:
    # serve and controller share the webhook-name flags: one parser takes both sets here.
    parser = argparse.ArgumentParser(conflict_handler="resolve")
    settings.add_common_flags(parser)
    settings.add_controller_flags(parser)
    settings.add_metrics_flags(parser)
    settings.add_serve_flags(parser)
    namespace = parser.parse_args(list(args))
    notices = resolve(namespace, env)
    return settings.from_args(namespace), notices


def test_flags_are_named_as_controller_runtime_names_them() -> None:
    parsed, notices = parse_with_notices(
        "--leader-elect=false",
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=:9",
        "--kube-api-qps=7.5",
        "--kube-api-burst=9",
        "--tls-cert-file=/c",
        "--tls-private-key-file=/k",
        env={},
    )
    assert notices == []
    assert parsed.leader_elect is False
    assert parsed.metrics_bind_address == "127.0.0.1:0"
    assert parsed.health_probe_bind_address == ":9"
    assert (parsed.kube_api_qps, parsed.kube_api_burst) == (7.5, 9)
    assert (parsed.tls_cert_file, parsed.tls_private_key_file) == (Path("/c"), Path("/k"))


def test_defaults_are_the_agreed_ports_and_leader_election_on() -> None:
    parsed, _ = parse_with_notices(env={})
    assert parsed == settings.Settings()
    assert parsed.metrics_bind_address == ":8080"
    assert parsed.health_probe_bind_address == ":8081"
    assert parsed.leader_elect is True


@pytest.mark.parametrize(
    ("old", "field", "value"),
    [
        ("--metrics-bind=127.0.0.1:9090", "metrics_bind_address", "127.0.0.1:9090"),
        ("--api-qps=3", "kube_api_qps", 3.0),
        ("--api-burst=4", "kube_api_burst", 4),
        ("--tls-key-file=/k", "tls_private_key_file", Path("/k")),
        ("--leader-election", "leader_elect", True),
        ("--no-leader-election", "leader_elect", False),
        ("--no-register", "register", False),
    ],
)
def test_old_flag_names_still_work_with_a_deprecation_notice(
    old: str, field: str, value: object
) -> None:
    parsed, notices = parse_with_notices(old, env={})
    assert getattr(parsed, field) == value
    assert len(notices) == 1 and notices[0].startswith(f"flag {old.split('=')[0]} is deprecated")


@pytest.mark.parametrize(
    ("variable", "text", "field", "value"),
    [
        ("REGISTRY_WEBHOOK_METRICS_BIND", ":1", "metrics_bind_address", ":1"),
        ("REGISTRY_WEBHOOK_API_QPS", "3", "kube_api_qps", 3.0),
        ("REGISTRY_WEBHOOK_API_BURST", "4", "kube_api_burst", 4),
        ("REGISTRY_WEBHOOK_TLS_KEY_FILE", "/k", "tls_private_key_file", Path("/k")),
        ("REGISTRY_WEBHOOK_LEADER_ELECTION", "false", "leader_elect", False),
    ],
)
def test_old_variable_names_still_work_with_a_deprecation_notice(
    variable: str, text: str, field: str, value: object
) -> None:
    parsed, notices = parse_with_notices(env={variable: text})
    assert getattr(parsed, field) == value
    assert len(notices) == 1 and notices[0].startswith(f"environment variable {variable} is dep")


@pytest.mark.parametrize("variable", ["REGISTRY_WEBHOOK_REGISTER", "REGISTRY_WEBHOOK_LEADER_ELECT"])
@pytest.mark.parametrize("text", ["on", "enabled", "2"])
def test_boolean_variables_refuse_what_the_flags_refuse(variable: str, text: str) -> None:
    with pytest.raises(FlagError, match=f"{variable}: expected one of true, false"):
        parse_with_notices(env={variable: text})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--reconcile-workers=0"], "must be at least 1"),
        (["--kube-api-qps=0"], "must be more than 0"),
        (["--kube-api-qps=nan"], "expected a number"),
        (["--service-port=70000"], "must be 1 to 65535"),
        (["--threads=many"], "expected an integer"),
        (["--workers=0"], "must be at least 1"),
        (["--log-level=loud"], "expected one of DEBUG, INFO"),
        (["--metrics-bind-address=8080"], "expected host:port, :port or 0"),
        (["--token-lifetime-seconds=60"], "must be at least 600"),
    ],
)
def test_bad_values_are_refused_with_what_is_expected(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_with_notices(*argv, env={})
    assert message in capsys.readouterr().err


def test_a_bad_token_lifetime_in_the_environment_is_an_error_not_a_traceback() -> None:
    """It used to be parsed while the parser was built, before any error handling."""
    with pytest.raises(FlagError, match="REGISTRY_WEBHOOK_TOKEN_LIFETIME_SECONDS: must be at"):
        parse_with_notices(env={"REGISTRY_WEBHOOK_TOKEN_LIFETIME_SECONDS": "5"})


def test_logs_are_json_unless_text_is_asked_for_by_flag_or_environment() -> None:
    assert parse_with_notices(env={})[0].log_format == "json"
    assert parse_with_notices("--log-format=text", env={})[0].log_format == "text"
    environment = {"REGISTRY_WEBHOOK_LOG_FORMAT": "text"}
    assert parse_with_notices(env=environment)[0].log_format == "text"


def test_an_unknown_log_format_is_refused_from_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_with_notices("--log-format=xml", env={})
    assert "expected one of json, text; got 'xml'" in capsys.readouterr().err


def test_an_unknown_log_format_is_refused_from_the_environment() -> None:
    with pytest.raises(FlagError, match="REGISTRY_WEBHOOK_LOG_FORMAT"):
        parse_with_notices(env={"REGISTRY_WEBHOOK_LOG_FORMAT": "xml"})


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
    args: tuple[str, ...], env: str | None, expected: bool
) -> None:
    environment = {} if env is None else {"REGISTRY_WEBHOOK_MANAGE_CERTIFICATES": env}
    parsed, _ = parse_with_notices(*args, env=environment)
    assert parsed.manage_certificates is expected


def test_a_boolean_flag_refuses_what_is_not_a_boolean() -> None:
    with pytest.raises(SystemExit):
        parse_with_notices("--manage-certificates=maybe", env={})


def test_the_controller_knows_the_webhook_names_and_the_propagation_time() -> None:
    parsed, _ = parse_with_notices(
        "--service-name=svc",
        "--configuration-name=cfg",
        "--certificate-propagation-seconds=3",
        env={},
    )
    assert (parsed.service_name, parsed.configuration_name) == ("svc", "cfg")
    assert parsed.certificate_propagation_seconds == 3.0
    default, _ = parse_with_notices(env={})
    assert (
        default.certificate_propagation_seconds == settings.DEFAULT_CERTIFICATE_PROPAGATION_SECONDS
    )


def test_workers_come_from_the_command_line_two_by_default() -> None:
    """Two, one per core of the machine the issue measures on (``DEFAULT_WORKERS``)."""
    assert parse_with_notices("--workers=1", env={})[0].workers == 1
    assert parse_with_notices(env={})[0].workers == 2
