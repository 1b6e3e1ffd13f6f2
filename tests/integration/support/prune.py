"""``image-registry-webhook prune images`` run as a user runs it: a process of its own with
a kubeconfig, its table on stdout, its exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from localcluster.binaries import REPO_ROOT
from localcluster.frontdoor import LocalFrontDoor

PRUNE_SECONDS = 120.0
"""Bound on one run: it lists a test cluster's objects and deletes a few."""


def prune_images(
    kubeconfig: Path, door: LocalFrontDoor, *args: str
) -> subprocess.CompletedProcess[str]:
    """A prune of this stack, its registry named as the controller names it."""
    argv = [
        sys.executable, "-m", "cli", "prune", "images",
        f"--kubeconfig={kubeconfig}",
        "--log-format=text",
        f"--internal-registry={door.host}",
        f"--upstream-registry={door.registry.url}",
        f"--upstream-ca-file={door.registry.ca_file}",
        *args,
    ]  # fmt: skip
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=PRUNE_SECONDS, check=False
    )
