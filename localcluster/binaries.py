"""Where the control-plane binaries come from: the cached build of ``hack/controlplane``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-controlplane.sh"
REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


def binaries_dir() -> Path:
    """The directory holding the binaries, building them on first use.

    ``LOCALCLUSTER_BIN_DIR`` points at binaries built elsewhere and skips the build.
    """
    override = os.environ.get("LOCALCLUSTER_BIN_DIR")
    if override:
        directory = Path(override)
    else:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
        )
        directory = Path(result.stdout.strip().splitlines()[-1]) / "bin"
    missing = [name for name in REQUIRED if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"missing control-plane binaries in {directory}: {missing}")
    return directory
