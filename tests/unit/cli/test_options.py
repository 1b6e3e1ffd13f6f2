"""The flags of each command and their environment-variable defaults, through the command's
own parser (``cli.main.parse``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cli import options
from cli.main import parse
from controller.certificates.reconciler import DEFAULT_CERTIFICATE_PROPAGATION_SECONDS


def parse_with_notices(
    command: str, *args: str, env: dict[str, str] | None = None
) -> tuple[argparse.Namespace, list[str]]:
    return parse([*command.split(), *args], env or {})


def controller(*args: str, env: dict[str, str] | None = None) -> argparse.Namespace:
    return parse_with_notices("controller", *args, env=env)[0]


def serve(*args: str, env: dict[str, str] | None = None) -> argparse.Namespace:
    return parse_with_notices("serve", *args, env=env)[0]


def test_pull_secret_tokens_are_for_the_registry_by_default() -> None:
    assert controller().token_audiences == ("image-registry.alauda.io",)
    assert parse_with_notices("frontdoor")[0].token_audiences == ("image-registry.alauda.io",)


def test_token_audiences_come_from_the_flag_or_the_environment() -> None:
    assert controller("--token-audiences", " a, b ,").token_audiences == ("a", "b")
    env = {"REGISTRY_WEBHOOK_TOKEN_AUDIENCES": "registry.example.com"}
    assert controller(env=env).token_audiences == ("registry.example.com",)


def test_an_empty_audience_list_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        controller("--token-audiences", " , ")
    assert "needs at least one audience" in capsys.readouterr().err


def test_pushreview_callers_are_reviewed_for_the_api_servers_audiences_by_default() -> None:
    assert serve().pushreview_token_audiences == ()


def test_pushreview_token_audiences_come_from_the_flag_or_the_environment() -> None:
    flag = "--pushreview-token-audiences"
    assert serve(flag, " a, b ,").pushreview_token_audiences == ("a", "b")
    assert serve(flag, "").pushreview_token_audiences == (), "empty: the API server's"
    env = {"REGISTRY_WEBHOOK_PUSHREVIEW_TOKEN_AUDIENCES": "policy.example.com"}
    assert serve(env=env).pushreview_token_audiences == ("policy.example.com",)


def test_flags_are_named_as_controller_runtime_names_them() -> None:
    parsed, notices = parse_with_notices(
        "controller",
        "--leader-elect=false",
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=:9",
        "--kube-api-qps=7.5",
        "--kube-api-burst=9",
    )
    assert notices == []
    assert parsed.leader_elect is False
    assert parsed.metrics_bind_address == "127.0.0.1:0"
    assert parsed.health_probe_bind_address == ":9"
    assert (parsed.kube_api_qps, parsed.kube_api_burst) == (7.5, 9)
    served = serve("--tls-cert-file=/c", "--tls-private-key-file=/k")
    assert (served.tls_cert_file, served.tls_private_key_file) == (Path("/c"), Path("/k"))


def test_defaults_are_the_agreed_ports_and_leader_election_on() -> None:
    parsed = controller()
    assert parsed.metrics_bind_address == ":8080"
    assert parsed.health_probe_bind_address == ":8081"
    assert parsed.leader_elect is True
    assert serve().bind == "0.0.0.0:8443"
    assert parse_with_notices("frontdoor")[0].bind == "0.0.0.0:5000"


@pytest.mark.parametrize(
    ("command", "old", "field", "value"),
    [
        ("controller", "--metrics-bind=127.0.0.1:9090", "metrics_bind_address", "127.0.0.1:9090"),
        ("controller", "--api-qps=3", "kube_api_qps", 3.0),
        ("controller", "--api-burst=4", "kube_api_burst", 4),
        ("serve", "--tls-key-file=/k", "tls_private_key_file", Path("/k")),
        ("frontdoor", "--tls-key-file=/k", "tls_private_key_file", Path("/k")),
        ("controller", "--leader-election", "leader_elect", True),
        ("controller", "--no-leader-election", "leader_elect", False),
        ("serve", "--no-register", "register", False),
    ],
)
def test_old_flag_names_still_work_with_a_deprecation_notice(
    command: str, old: str, field: str, value: object
) -> None:
    parsed, notices = parse_with_notices(command, old)
    assert getattr(parsed, field) == value
    assert len(notices) == 1 and notices[0].startswith(f"flag {old.split('=')[0]} is deprecated")


@pytest.mark.parametrize(
    ("command", "variable", "text", "field", "value"),
    [
        ("controller", "REGISTRY_WEBHOOK_METRICS_BIND", ":1", "metrics_bind_address", ":1"),
        ("controller", "REGISTRY_WEBHOOK_API_QPS", "3", "kube_api_qps", 3.0),
        ("controller", "REGISTRY_WEBHOOK_API_BURST", "4", "kube_api_burst", 4),
        ("serve", "REGISTRY_WEBHOOK_TLS_KEY_FILE", "/k", "tls_private_key_file", Path("/k")),
        ("controller", "REGISTRY_WEBHOOK_LEADER_ELECTION", "false", "leader_elect", False),
    ],
)
def test_old_variable_names_still_work_with_a_deprecation_notice(
    command: str, variable: str, text: str, field: str, value: object
) -> None:
    parsed, notices = parse_with_notices(command, env={variable: text})
    assert getattr(parsed, field) == value
    assert len(notices) == 1 and notices[0].startswith(f"environment variable {variable} is dep")


@pytest.mark.parametrize(
    ("command", "variable"),
    [("serve", "REGISTRY_WEBHOOK_REGISTER"), ("controller", "REGISTRY_WEBHOOK_LEADER_ELECT")],
)
@pytest.mark.parametrize("text", ["on", "enabled", "2"])
def test_boolean_variables_refuse_what_the_flags_refuse(
    command: str, variable: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_with_notices(command, env={variable: text})
    assert f"{variable}: expected one of true, false" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["controller", "--reconcile-workers=0"], "must be at least 1"),
        (["controller", "--kube-api-qps=0"], "must be more than 0"),
        (["controller", "--kube-api-qps=nan"], "expected a number"),
        (["serve", "--service-port=70000"], "must be 1 to 65535"),
        (["serve", "--threads=many"], "expected an integer"),
        (["frontdoor", "--workers=0"], "must be at least 1"),
        (["controller", "--log-level=loud"], "expected one of DEBUG, INFO"),
        (["serve", "--metrics-bind-address=8080"], "expected host:port, :port or 0"),
        (["controller", "--token-lifetime-seconds=60"], "must be at least 600"),
    ],
)
def test_bad_values_are_refused_with_what_is_expected(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse(argv, {})
    assert message in capsys.readouterr().err


def test_a_bad_token_lifetime_in_the_environment_is_an_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It used to be parsed while the parser was built, before any error handling."""
    with pytest.raises(SystemExit):
        controller(env={"REGISTRY_WEBHOOK_TOKEN_LIFETIME_SECONDS": "5"})
    assert "REGISTRY_WEBHOOK_TOKEN_LIFETIME_SECONDS: must be at" in capsys.readouterr().err


def test_logs_are_json_unless_text_is_asked_for_by_flag_or_environment() -> None:
    assert controller().log_format == "json"
    assert controller("--log-format=text").log_format == "text"
    assert controller(env={"REGISTRY_WEBHOOK_LOG_FORMAT": "text"}).log_format == "text"


def test_an_unknown_log_format_is_refused_from_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        controller("--log-format=xml")
    assert "expected one of json, text; got 'xml'" in capsys.readouterr().err


def test_an_unknown_log_format_is_refused_from_the_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        controller(env={"REGISTRY_WEBHOOK_LOG_FORMAT": "xml"})
    assert "REGISTRY_WEBHOOK_LOG_FORMAT" in capsys.readouterr().err


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
    assert controller(*args, env=environment).manage_certificates is expected


def test_a_boolean_flag_refuses_what_is_not_a_boolean() -> None:
    with pytest.raises(SystemExit):
        controller("--manage-certificates=maybe")


def test_the_controller_knows_the_webhook_names_and_the_propagation_time() -> None:
    parsed = controller(
        "--service-name=svc", "--configuration-name=cfg", "--certificate-propagation-seconds=3"
    )
    assert (parsed.service_name, parsed.configuration_name) == ("svc", "cfg")
    assert parsed.certificate_propagation_seconds == 3.0
    default = controller().certificate_propagation_seconds
    assert default == DEFAULT_CERTIFICATE_PROPAGATION_SECONDS


def test_workers_come_from_the_command_line_two_by_default() -> None:
    """Two, one per core of the machine the issue measures on (``DEFAULT_WORKERS``)."""
    assert serve("--workers=1").workers == 1
    assert serve().workers == 2


def test_the_namespaces_never_touched_are_ours_kube_system_and_the_configured_ones() -> None:
    assert options.never_touched_namespaces("ours", ["a", "ours", "b"]) == (
        "ours",
        "kube-system",
        "a",
        "b",
    )


def test_no_flag_is_declared_twice_for_one_command() -> None:
    for name, flags in options.COMMAND_FLAGS.items():
        declared = [flag.option for flag in (*options.GLOBAL_FLAGS, *flags)]
        assert len(declared) == len(set(declared)), name
