"""The command line: subcommands, ``--version``, help on every flag, deprecations logged,
and its last-resort error line, a log line in the chosen format."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

import controller.main
from cli import main as cli
from cli.flags import FlagAction
from cli.main import main


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
    monkeypatch.setattr(cli, "load_configuration", lambda kubeconfig: None)


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
