"""The project's images for a local node: the cached build of ``hack/build-images.sh``.

No image registry is reachable where the node runs, so its containerd gets the service's
image and the registry's as OCI archives to import (``ctr -n k8s.io images import``),
each naming its image in its index. The script builds them once per set of inputs, like
the binaries of :mod:`localcluster.binaries`, and records them in ``images.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from localcluster.binaries import REPO_ROOT

BUILD_SCRIPT = REPO_ROOT / "hack" / "build-images.sh"
OVERRIDE_VARIABLE = "LOCALCLUSTER_IMAGES_DIR"
"""A directory holding ``images.json`` and its archives, built elsewhere: no build."""
RECORD = "images.json"


@dataclass(frozen=True)
class BuiltImage:
    name: str
    """The reference the archive's index names (``localhost/registry-v2/...:KEY``)."""
    archive: Path
    """An OCI archive (``oci-archive`` transport, a tar of an OCI layout)."""


@dataclass(frozen=True)
class Images:
    policy: BuiltImage
    """The service's image: the Dockerfile on the local Debian base."""
    registry: BuiltImage
    """The CNCF registry that ``make ocitools`` builds, FROM scratch."""
    source_date_epoch: int
    """The time of every image and of every file in their layers."""


def read_record(directory: Path) -> Images:
    """The images a build directory holds, from its ``images.json``; an archive it names
    that is not there is an error now, not at import."""
    record = json.loads((directory / RECORD).read_text())

    def image(role: str) -> BuiltImage:
        archive = directory / record[role]["archive"]
        if not archive.is_file():
            raise FileNotFoundError(f"{RECORD} in {directory} names a missing {archive.name}")
        return BuiltImage(name=record[role]["name"], archive=archive)

    return Images(
        policy=image("policy"),
        registry=image("registry"),
        source_date_epoch=int(record["source_date_epoch"]),
    )


def images_dir() -> Path:
    """The cache directory of the images, building them on first use (a few minutes, as
    root, with buildah and debootstrap: ``make nodepackages``); progress goes to stderr."""
    override = os.environ.get(OVERRIDE_VARIABLE)
    if override:
        return Path(override)
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def built_images() -> Images:
    """The policy and registry images as OCI archives, built once per set of inputs."""
    return read_record(images_dir())
