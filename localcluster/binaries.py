"""Where the control-plane binaries come from: the cached build of ``hack/controlplane``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-controlplane.sh"
REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


def cached_build(script: Path, required: tuple[str, ...], override_variable: str) -> Path:
    """The ``bin`` directory of a ``hack/build-*.sh`` cache, building it on first use
    (the script prints the cache directory last); ``override_variable`` names a directory
    of binaries built elsewhere, which skips the build."""
    override = os.environ.get(override_variable)
    if override:
        directory = Path(override)
    else:
        result = subprocess.run(
            ["bash", str(script)], check=True, stdout=subprocess.PIPE, text=True
        )
        directory = Path(result.stdout.strip().splitlines()[-1]) / "bin"
    missing = [name for name in required if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"missing binaries in {directory}: {missing}")
    return directory


def binaries_dir() -> Path:
    """The directory holding the control-plane binaries (``LOCALCLUSTER_BIN_DIR``: built
    elsewhere)."""
    return cached_build(BUILD_SCRIPT, REQUIRED, "LOCALCLUSTER_BIN_DIR")


NODE_BUILD_SCRIPT = REPO_ROOT / "hack" / "build-node.sh"
NODE_REQUIRED = ("kubelet", "kube-scheduler", "kube-proxy", "pause")


def node_binaries_dir() -> Path:
    """The directory holding the node's binaries (``LOCALCLUSTER_NODE_BIN_DIR``: built
    elsewhere)."""
    return cached_build(NODE_BUILD_SCRIPT, NODE_REQUIRED, "LOCALCLUSTER_NODE_BIN_DIR")
