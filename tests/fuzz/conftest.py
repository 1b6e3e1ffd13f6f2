"""The fuzz server: started once per session, stopped with its whole process group."""

from __future__ import annotations

import ssl
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.waiting import wait_for
from tests.fuzz.server import ServerProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE = 60.0
"""Importing the app and forking the worker takes a few seconds; on 2 cores shared with
other test processes it has taken several times that."""
PROBE_TIMEOUT = 5.0


_REPORT: list[str] = []


@pytest.fixture(scope="session")
def fuzz_report() -> list[str]:
    """Lines a fuzz run adds here are printed at the end of the pytest run."""
    return _REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("fuzz figures")
        for line in _REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    work = tmp_path_factory.mktemp("fuzz-server")
    port = free_port()
    process = ManagedProcess(
        "fuzz-server",
        [sys.executable, "-m", "tests.fuzz.server", f"127.0.0.1:{port}", str(work / "certs")],
        work,
        cwd=REPO_ROOT,
    )
    server = ServerProcess(
        f"https://127.0.0.1:{port}", str(work / "certs" / "ca.crt"), process.pid, process.log_path
    )
    try:

        def healthy() -> bool:
            assert process.running(), process.log_tail()
            context = ssl.create_default_context(cafile=server.ca_file)
            with urllib.request.urlopen(
                server.url + "/healthz", context=context, timeout=PROBE_TIMEOUT
            ) as response:
                return bool(response.status == 200)

        wait_for(healthy, timeout=STARTUP_DEADLINE, what="the fuzz server to answer /healthz")
        yield server
    finally:
        process.stop()
