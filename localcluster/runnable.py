"""Runnable images of one static binary, made on the spot with no registry and no builder.

The node needs Kubernetes' pause image, and the end-to-end tests need a small image a
kubelet really runs; neither can be fetched here. One layer, a real gzipped tarball of the
binary, and a config naming it as the entrypoint is all either takes. The result is an OCI
image layout (a real client pushes it: ``crane push DIR REF``) or an OCI archive whose
index entry carries the name ``ctr images import`` gives it.

``python -m localcluster.runnable OUTDIR [ARGS...]`` writes, for a person following the
README, the marker image (``MARKER_SOURCE``, built with gcc) as a layout in OUTDIR whose
command is ARGS: ``crane push OUTDIR REF`` pushes it, and a pod of it prints ARGS.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcluster.ocilayout import LAYOUT_VERSION, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST

CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"
"""The index annotation ``ctr images import`` names an image by (containerd's
``images/archive`` importer)."""
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
EPOCH = 0
"""Every timestamp in the images: the same inputs give the same digests."""
MARKER_ENTRYPOINT = "/marker"
"""Where the marker binary sits in its image."""
MARKER_SOURCE = r"""
#include <stdio.h>
#include <unistd.h>
/* Prints its arguments on one line, then waits: a container that stays Running and
   whose log proves it ran. */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) printf(i > 1 ? " %s" : "%s", argv[i]);
    printf("\n");
    fflush(stdout);
    for (;;) pause();
}
"""


@dataclass(frozen=True)
class RunnableImage:
    layout: Path
    """An OCI image layout holding the image (``index.json`` names it)."""
    digest: str
    """The manifest's digest."""


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest, len(data)


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _layer(binary: Path, path_in_image: str) -> tuple[bytes, str]:
    """A gzipped tarball holding ``binary`` at ``path_in_image``, and its diff ID."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(path_in_image.lstrip("/"))
        data = binary.read_bytes()
        info.size = len(data)
        info.mode = 0o755
        info.mtime = EPOCH
        tar.addfile(info, io.BytesIO(data))
    uncompressed = raw.getvalue()
    compressed = gzip.compress(uncompressed, mtime=EPOCH)
    return compressed, "sha256:" + hashlib.sha256(uncompressed).hexdigest()


def write_image(
    layout: Path,
    binary: Path,
    *,
    entrypoint: Sequence[str],
    cmd: Sequence[str] = (),
    user: str = "65532:65532",
    name: str | None = None,
) -> RunnableImage:
    """An image whose one layer holds ``binary`` at ``entrypoint[0]``; ``name`` (a full
    reference) goes into the index annotations."""
    layer, diff_id = _layer(binary, entrypoint[0])
    layer_digest, layer_size = _blob(layout, layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": list(entrypoint), "Cmd": list(cmd), "User": user},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_digest, config_size = _blob(layout, _canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer_size}],
    }
    digest, size = _blob(layout, _canonical(manifest))
    entry: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": size}
    if name is not None:
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
        entry["annotations"] = {CONTAINERD_NAME_ANNOTATION: name, REF_NAME_ANNOTATION: tag}
    (layout / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": LAYOUT_VERSION}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    (layout / "index.json").write_bytes(_canonical(index))
    return RunnableImage(layout, digest)


def write_archive(layout: Path, archive: Path) -> Path:
    """The layout as an OCI archive (a tarball of its files), for ``ctr images import``."""
    with tarfile.open(archive, "w") as tar:
        for path in sorted(layout.rglob("*")):
            if path.is_file():
                info = tar.gettarinfo(str(path), str(path.relative_to(layout)))
                info.mtime = EPOCH
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
    return archive


def build_marker_binary(directory: Path) -> Path:
    """A static binary that prints its arguments and then waits (``MARKER_SOURCE``)."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "marker.c"
    source.write_text(MARKER_SOURCE)
    binary = directory / "marker"
    subprocess.run(
        ["gcc", "-Os", "-static", "-o", str(binary), str(source)],
        check=True,
        capture_output=True,
    )
    return binary


def main(argv: Sequence[str] | None = None) -> int:
    """Build the marker image into OUTDIR and print the layout's path."""
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.runnable",
        description="Write a runnable OCI image layout: a static binary that prints ARGS "
        "on one line and then waits (needs gcc and a static libc).",
    )
    parser.add_argument("outdir", type=Path, help="the OCI layout to write (crane push OUTDIR REF)")
    parser.add_argument("args", nargs="*", help="the image's command: what its pod prints")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as build:
        binary = build_marker_binary(Path(build))
        write_image(options.outdir, binary, entrypoint=[MARKER_ENTRYPOINT], cmd=options.args)
    print(options.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
