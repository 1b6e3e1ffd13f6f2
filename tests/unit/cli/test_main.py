"""The command's last-resort error line is a log line in the chosen format."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

import controller.main
from cli.main import main
from kube.settings import Settings


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
    def fail(settings: Settings) -> int:
        raise RuntimeError("cannot reach the API server")

    monkeypatch.setattr(controller.main, "run_controller", fail)
    assert main(["controller"]) == 1
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["level"] == "ERROR"
    assert line["msg"] == "fatal error: cannot reach the API server"


def test_the_effective_settings_are_logged_at_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(controller.main, "run_controller", lambda settings: 0)
    assert main(["controller", "--log-level=DEBUG", "--reconcile-workers=3"]) == 0
    lines = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    [line] = [line for line in lines if line["msg"] == "settings"]
    assert (line["level"], line["command"], line["reconcile_workers"]) == ("DEBUG", "controller", 3)


def test_the_settings_are_not_logged_at_info(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(controller.main, "run_controller", lambda settings: 0)
    assert main(["controller"]) == 0
    assert capsys.readouterr().err == ""
