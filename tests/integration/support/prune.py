"""``image-registry-webhook prune images`` run as a user runs it: a process of its own with
a kubeconfig, its table on stdout, its exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from localcluster.binaries import REPO_ROOT
from localcluster.frontdoor import LocalFrontDoor

PRUNE_SECONDS = 120.0
"""Bound on one run: it lists a test cluster's objects and deletes a few."""
GATED_COLLECTOR = """#!/bin/sh
# The registry binary, held before its garbage collection until the test lets it go:
# it says it has started, then blocks reading a FIFO the test writes to.
: > "{started}"
read _ < "{gate}"
exec "{binary}" "$@"
"""


class GatedCollector:
    """A stand-in for ``registry`` that runs the real one once :meth:`release` is called,
    so a test acts while the front door is read-only and GC has not begun."""

    def __init__(self, directory: Path, binary: Path) -> None:
        self.started = directory / "started"
        self.gate = directory / "gate"
        self.path = directory / "registry"
        os.mkfifo(self.gate)
        self.path.write_text(
            GATED_COLLECTOR.format(started=self.started, gate=self.gate, binary=binary)
        )
        self.path.chmod(0o755)

    def release(self) -> None:
        with self.gate.open("w") as gate:
            gate.write("go\n")


def prune_argv(kubeconfig: Path, door: LocalFrontDoor, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "cli", "prune", "images",
        f"--kubeconfig={kubeconfig}",
        "--log-format=text",
        f"--internal-registry={door.host}",
        f"--upstream-registry={door.registry.url}",
        f"--upstream-ca-file={door.registry.ca_file}",
        *args,
    ]  # fmt: skip


def prune_images(
    kubeconfig: Path, door: LocalFrontDoor, *args: str
) -> subprocess.CompletedProcess[str]:
    """A prune of this stack, its registry named as the controller names it."""
    argv = prune_argv(kubeconfig, door, *args)
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=PRUNE_SECONDS, check=False
    )
