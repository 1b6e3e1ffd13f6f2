"""The command line: subcommands, ``--version``, help on every flag, deprecations logged,
and its last-resort error line, a log line in the chosen format."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

import controller.main
from cli import main as cli
from cli.flags import FlagAction
from cli.main import main
from controller.certificates.rotate import RotationError


def flags_without_help(top: argparse.ArgumentParser) -> list[str]:
    """Every flag or subcommand of ``top`` and its subcommands that ``--help`` leaves
    unexplained; deprecated names must be hidden instead."""
    missing = []
    for name, parser in [("image-registry-webhook", top), *cli.subcommands(top).items()]:
        for action in parser._actions:
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if isinstance(action, FlagAction) and action.alias is not None:
                if action.help != argparse.SUPPRESS:
                    missing.append(f"{label} (deprecated, should be hidden)")
                continue
            if not (action.help and action.help.strip()) or action.help == argparse.SUPPRESS:
                missing.append(label)
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {a.dest}" for a in action._choices_actions if not a.help]
    return missing


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"image-registry-webhook {version('registry-v2-policy')}"
    )


def test_the_subcommands_are_the_processes_and_the_tools() -> None:
    assert sorted(cli.subcommands(cli.build_parser())) == [
        "certs",
        "controller",
        "frontdoor",
        "node-ca",
        "prune",
        "serve",
        "webhook-configurations",
    ]


def test_every_flag_and_subcommand_has_help() -> None:
    assert flags_without_help(cli.build_parser()) == []


def test_the_help_walk_sees_a_flag_without_help() -> None:
    parser = cli.build_parser()
    cli.subcommands(parser)["serve"].add_argument("--silent")
    assert flags_without_help(parser) == ["serve --silent"]


Ran = list[tuple[str, tuple[Any, ...]]]


@pytest.fixture(autouse=True)
def a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command here finds a kubeconfig (the subprocess tests run without one)."""
    monkeypatch.setattr(cli, "load_configuration", lambda kubeconfig: None, raising=False)


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Ran:
    """The processes main would start, with their configurations, recorded instead."""
    calls: Ran = []

    def record(name: str) -> Any:
        def run(*configs: Any) -> int:
            calls.append((name, configs))
            return 0

        return run

    import controller.main
    import frontdoor.main
    import serving.workermetrics
    import webhook.main

    monkeypatch.setattr(controller.main, "run_controller", record("controller"))
    # prometheus_client is imported in this process already: no multiprocess directory.
    monkeypatch.setattr(serving.workermetrics, "shared_directory", contextlib.nullcontext)
    monkeypatch.setattr(webhook.main, "run_server", record("serve"))
    monkeypatch.setattr(frontdoor.main, "run_frontdoor", record("frontdoor"))
    monkeypatch.setattr(cli, "configure_logging", lambda level, log_format: None)
    return calls


def test_a_deprecated_name_is_logged_once_per_run(
    ran: Ran,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("REGISTRY_WEBHOOK_API_BURST", "7")
    with caplog.at_level(logging.WARNING, logger="cli.main"):
        assert cli.main(["controller", "--api-qps=3", "--api-qps=4", "--no-leader-election"]) == 0
    (command, (config,)) = ran[0]
    reconcile = config.reconcile
    assert (command, reconcile.kube_api_qps, reconcile.kube_api_burst) == ("controller", 4.0, 7)
    assert config.leader_elect is False
    assert sorted(r.getMessage() for r in caplog.records) == [
        "environment variable REGISTRY_WEBHOOK_API_BURST is deprecated: use "
        "REGISTRY_WEBHOOK_KUBE_API_BURST",
        "flag --api-qps is deprecated: use --kube-api-qps",
        "flag --no-leader-election is deprecated: use --leader-elect=false",
    ]


def test_current_names_log_no_deprecation(
    ran: Ran, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    argv = ["serve", "--register=yes", "--metrics-bind-address=0", f"--dev-certs-dir={tmp_path}"]
    with caplog.at_level(logging.WARNING, logger="cli.main"):
        assert cli.main(argv) == 0
    [(_, (serving, webhook))] = ran
    assert webhook.register is True
    assert serving.metrics_bind_address == "0"
    assert caplog.records == []


def test_a_bad_variable_is_a_usage_error_not_a_traceback(
    ran: Ran,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REGISTRY_WEBHOOK_LEADER_ELECT", "on")
    with pytest.raises(SystemExit) as exited:
        cli.main(["controller"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage: image-registry-webhook controller" in err
    assert "environment variable REGISTRY_WEBHOOK_LEADER_ELECT: expected one of true" in err
    assert "Traceback" not in err
    assert ran == []


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_a_fatal_error_is_one_json_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(config: object) -> int:
        raise RuntimeError("cannot reach the API server")

    monkeypatch.setattr(controller.main, "run_controller", fail)
    assert main(["controller"]) == 1
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["level"] == "ERROR"
    assert line["msg"] == "fatal error: cannot reach the API server"


def test_the_effective_settings_are_logged_at_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(controller.main, "run_controller", lambda config: 0)
    assert main(["controller", "--log-level=DEBUG", "--reconcile-workers=3"]) == 0
    lines = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    [line] = [line for line in lines if line["msg"] == "settings"]
    assert (line["level"], line["command"], line["reconcile_workers"]) == ("DEBUG", "controller", 3)


def test_the_settings_are_not_logged_at_info(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(controller.main, "run_controller", lambda config: 0)
    assert main(["controller"]) == 0
    assert capsys.readouterr().err == ""


# --- the command as a newcomer meets it: real runs of `python -m cli` ------------------------

REPO = Path(__file__).resolve().parents[3]
RUN_SECONDS = 60.0
"""A refused start takes about a second (the interpreter and the imports); a process that
starts instead never ends, and fails the test here."""


def run_command(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``python -m cli ARGV`` as a newcomer runs it: no kubeconfig (HOME is empty, no
    KUBECONFIG), not in a cluster (no KUBERNETES_SERVICE_HOST), no REGISTRY_WEBHOOK_*."""
    environment = {"PATH": os.environ["PATH"], "HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "cli", *argv],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )


OFF = ("--metrics-bind-address=0",)


@pytest.mark.parametrize(
    "argv",
    [
        ("serve", "--bind=127.0.0.1:0", "--dev-certs-dir=certs", *OFF),
        (
            "frontdoor",
            "--bind=127.0.0.1:0",
            "--dev-certs-dir=certs",
            "--upstream-registry=https://r",
            *OFF,
        ),
        ("controller", "--health-probe-bind-address=0", *OFF),
        ("certs", "rotate"),
    ],
    ids=lambda argv: argv[0],
)
def test_without_a_cluster_a_command_says_how_to_give_one_in_one_line(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    done = run_command(
        *(a.replace("=certs", f"={tmp_path / 'certs'}") for a in argv), home=tmp_path
    )
    [line] = done.stderr.splitlines()
    assert "--kubeconfig" in line and "KUBECONFIG" in line and "in-cluster config" in line
    assert done.returncode == 1
    assert not (tmp_path / "certs").exists(), "nothing started: not even the certificates"


def test_a_front_door_without_its_registry_is_refused_before_it_binds(tmp_path: Path) -> None:
    done = run_command(
        "frontdoor",
        "--bind=127.0.0.1:0",
        f"--dev-certs-dir={tmp_path / 'certs'}",
        *OFF,
        home=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "image-registry-webhook frontdoor: error: frontdoor needs --upstream-registry "
        "(the https:// URL of the registry behind it)"
    )
    assert "Booting worker" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "certs").exists()


@pytest.mark.parametrize(
    ("command", "value", "said"),
    [
        ("frontdoor", "registry:5000", "expected https://host[:port]"),
        ("frontdoor", "http://registry.example.com:5000", "http:// only to a loopback host"),
        ("frontdoor", "https://user:secret@registry", "no credentials"),
        ("frontdoor", "https://registry/v2/", "no path"),
        ("controller", "registry:5000", "expected https://host[:port]"),
    ],
)
def test_an_upstream_registry_that_is_no_url_is_refused_before_it_binds(
    command: str, value: str, said: str, tmp_path: Path
) -> None:
    door = ("--bind=127.0.0.1:0", f"--dev-certs-dir={tmp_path / 'certs'}")
    serving = door if command == "frontdoor" else ()
    done = run_command(command, f"--upstream-registry={value}", *serving, *OFF, home=tmp_path)
    assert done.returncode == 2
    [*_, line] = done.stderr.splitlines()
    prefix = f"image-registry-webhook {command}: error: argument --upstream-registry:"
    assert line.startswith(prefix)
    assert said in line
    assert "secret" not in done.stderr, "a credential is not echoed"
    assert "Booting worker" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "certs").exists()


@pytest.mark.parametrize(
    ("command", "flag", "takers"),
    [
        ("serve", "--token-lifetime-seconds=600", "controller"),
        ("serve", "--internal-registry=r:5000", "frontdoor, controller, prune images"),
        ("serve", "--upstream-registry=https://r", "frontdoor, controller, prune images"),
        ("frontdoor", "--excluded-namespace=a", "serve, webhook-configurations, controller"),
        ("frontdoor", "--extra-registry-hostname=h", "controller"),
        ("controller", "--bind=:1", "serve, frontdoor"),
        ("webhook-configurations", "--register", "serve"),
    ],
)
def test_a_flag_of_another_command_is_refused_naming_where_it_belongs(
    command: str, flag: str, takers: str, tmp_path: Path
) -> None:
    done = run_command(command, flag, home=tmp_path)
    option = flag.split("=", 1)[0]
    assert done.returncode == 2
    assert f"{option} is a flag of {takers}, not of {command}" in done.stderr.splitlines()[-1]


def test_global_flags_come_before_the_command_too(tmp_path: Path) -> None:
    done = run_command(
        "--log-level", "DEBUG", "--log-format=text", "webhook-configurations", home=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "kind: ValidatingWebhookConfiguration" in done.stdout
    assert " DEBUG cli.main settings " in done.stderr


def test_a_global_flag_after_the_command_wins_over_one_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args, _ = cli.parse(["--log-level=DEBUG", "controller", "--log-level=ERROR"], {})
    assert args.log_level == "ERROR"
    args, _ = cli.parse(["--namespace=before", "controller"], {"POD_NAMESPACE": "env"})
    assert args.namespace == "before", "a global flag before the command wins over its variable"
    args, _ = cli.parse(["certs", "rotate"], {"POD_NAMESPACE": "env"})
    assert args.namespace == "env"


def test_the_front_doors_errors_name_the_front_door(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frontdoor", "--upstream-registry=https://r"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "image-registry-webhook frontdoor: error: frontdoor needs its TLS certificate: give "
        "--tls-cert-file and --tls-private-key-file, or --dev-certs-dir"
    )


@pytest.fixture
def rotation(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``certs rotate`` against no API server: the rotation's outcome is set per test."""
    outcomes: list[str] = []

    @contextlib.contextmanager
    def no_api(kubeconfig: str | None = None) -> Iterator[object]:
        yield object()

    def rotate(core: object, namespace: str, timeout: float, now: object) -> str:
        outcome = outcomes.pop()
        if outcome.startswith("raise "):
            raise RotationError(outcome.removeprefix("raise "))
        if outcome.startswith("crash "):
            raise RuntimeError(outcome.removeprefix("crash "))
        return outcome

    monkeypatch.setattr("kube.client.api_client", no_api)
    monkeypatch.setattr("controller.certificates.rotate.rotate", rotate)
    return outcomes


def test_certs_rotate_answers_in_text_not_a_json_log_line(
    rotation: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    rotation.append("raise no certificate manager took it up within 60s")
    assert main(["certs", "rotate"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        "image-registry-webhook certs rotate: no certificate manager took it up within 60s\n",
    )


def test_certs_rotate_says_an_unexpected_failure_in_text_too(
    rotation: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    rotation.append("crash Forbidden: cannot patch secrets")
    assert main(["certs", "rotate"]) == 1
    assert capsys.readouterr().err == (
        "image-registry-webhook certs rotate: Forbidden: cannot patch secrets\n"
    )


def test_certs_rotate_prints_its_result(
    rotation: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    rotation.append("rotation requested at 2026-12-07T17:00:00.000000Z and started")
    assert main(["certs", "rotate"]) == 0
    assert capsys.readouterr() == (
        "rotation requested at 2026-12-07T17:00:00.000000Z and started\n",
        "",
    )
