"""The dev stack's supervisor: an exited replica comes back after its back-off, one
stopped on purpose does not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from localcluster.processes import ManagedProcess
from localcluster.supervisor import (
    FIRST_BACKOFF_SECONDS,
    MAX_BACKOFF_SECONDS,
    STEADY_RUN_SECONDS,
    Supervisor,
    backoff_seconds,
)

EXIT_DEADLINE = 10.0
"""For a Python process that exits at once to have exited, on a busy machine."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_backoff_doubles_and_is_capped() -> None:
    assert backoff_seconds(1) == FIRST_BACKOFF_SECONDS
    assert backoff_seconds(2) == 2 * FIRST_BACKOFF_SECONDS
    assert backoff_seconds(3) == 4 * FIRST_BACKOFF_SECONDS
    assert backoff_seconds(100) == MAX_BACKOFF_SECONDS


class Spawner:
    """Processes that exit at once with status 3, started at the fake clock's time."""

    def __init__(self, log_dir: Path, clock: Clock) -> None:
        self.log_dir, self.clock = log_dir, clock
        self.spawned: list[ManagedProcess] = []

    def __call__(self) -> ManagedProcess:
        process = ManagedProcess(
            "crashing", [sys.executable, "-c", "raise SystemExit(3)"], self.log_dir
        )
        process.started = self.clock.now
        self.spawned.append(process)
        return process

    def exited(self) -> None:
        self.spawned[-1].popen.wait(EXIT_DEADLINE)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def spawner(tmp_path: Path, clock: Clock) -> Spawner:
    return Spawner(tmp_path, clock)


def test_an_exited_replica_is_restarted_after_a_doubling_backoff(
    clock: Clock, spawner: Spawner
) -> None:
    supervisor = Supervisor(clock=clock)
    try:
        supervisor.run("crashing", spawner)
        for exits, delay in enumerate([FIRST_BACKOFF_SECONDS, 2 * FIRST_BACKOFF_SECONDS], 1):
            spawner.exited()
            supervisor.check()  # the exit is seen now
            clock.now += delay - 0.01
            supervisor.check()
            assert len(spawner.spawned) == exits, "restarted before its back-off"
            clock.now += 0.01
            supervisor.check()
            assert len(spawner.spawned) == exits + 1
            assert supervisor.process("crashing") is spawner.spawned[-1]
            assert supervisor.restarts("crashing") == exits
        # A steady run before the exit: the back-off starts over.
        clock.now += STEADY_RUN_SECONDS
        spawner.exited()
        supervisor.check()
        clock.now += FIRST_BACKOFF_SECONDS
        supervisor.check()
        assert supervisor.restarts("crashing") == 3
    finally:
        supervisor.close()


def test_a_replica_stopped_on_purpose_stays_down(clock: Clock, spawner: Spawner) -> None:
    supervisor = Supervisor(clock=clock)
    supervisor.run("crashing", spawner)
    supervisor.stop("crashing")
    clock.now += MAX_BACKOFF_SECONDS
    supervisor.check()
    assert len(spawner.spawned) == 1
    assert supervisor.process("crashing") is None
    supervisor.close()
