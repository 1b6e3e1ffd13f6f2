"""Where the registry and crane binaries come from: the cached build of ``hack/ocitools``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from localcluster.binaries import REPO_ROOT

BUILD_SCRIPT = REPO_ROOT / "hack" / "build-ocitools.sh"
REQUIRED = ("registry", "crane")


def ocitools_dir() -> Path:
    """The directory holding ``registry`` and ``crane``, building them on first use.

    ``LOCALCLUSTER_OCITOOLS_DIR`` points at binaries built elsewhere and skips the build.
    """
    override = os.environ.get("LOCALCLUSTER_OCITOOLS_DIR")
    if override:
        directory = Path(override)
    else:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
        )
        directory = Path(result.stdout.strip().splitlines()[-1]) / "bin"
    missing = [name for name in REQUIRED if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"missing registry/crane binaries in {directory}: {missing}")
    return directory


def registry_binary() -> Path:
    return ocitools_dir() / "registry"


def crane_binary() -> Path:
    return ocitools_dir() / "crane"
