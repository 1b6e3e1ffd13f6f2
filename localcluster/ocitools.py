"""Where the registry and crane binaries come from: the cached build of ``hack/ocitools``."""

from __future__ import annotations

from pathlib import Path

from localcluster.binaries import REPO_ROOT, cached_build

BUILD_SCRIPT = REPO_ROOT / "hack" / "build-ocitools.sh"
REQUIRED = ("registry", "crane")


def ocitools_dir() -> Path:
    """The directory holding ``registry`` and ``crane``, building them on first use
    (``LOCALCLUSTER_OCITOOLS_DIR``: built elsewhere)."""
    return cached_build(BUILD_SCRIPT, REQUIRED, "LOCALCLUSTER_OCITOOLS_DIR")


def registry_binary() -> Path:
    return ocitools_dir() / "registry"


def crane_binary() -> Path:
    return ocitools_dir() / "crane"
