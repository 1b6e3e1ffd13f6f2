"""The built images as a node would take them: an OCI archive's index, manifest and
config read as ``ctr images import`` reads them, and its root filesystem run the way the
kubelet's runtime runs a container (runc, the image's user and environment, a read-only
root). buildah unpacks the layers into a storage of its own, removed afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REF_NAME = "org.opencontainers.image.ref.name"
"""The index annotation ``ctr images import`` names a full reference after."""
COMMAND_SECONDS = 120.0
"""One buildah or runc call: unpacking 100 MiB of layers takes seconds on 2 idle cores,
tens of them when the cores are shared with a test run."""


def _blob(archive: tarfile.TarFile, digest: str) -> Any:
    algorithm, _, hexdigest = digest.partition(":")
    member = archive.extractfile(f"blobs/{algorithm}/{hexdigest}")
    assert member is not None, digest
    return json.load(member)


@dataclass(frozen=True)
class ArchivedImage:
    index: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]


def read_archive(path: Path) -> ArchivedImage:
    """The archive's index, and the manifest and config of its one image."""
    with tarfile.open(path) as archive:
        index_file = archive.extractfile("index.json")
        assert index_file is not None
        index = json.load(index_file)
        [entry] = index["manifests"]
        manifest = _blob(archive, entry["digest"])
        config = _blob(archive, manifest["config"]["digest"])
    return ArchivedImage(index=index, manifest=manifest, config=config)


class Storage:
    """A buildah storage under ``directory``: what the test unpacks stays there."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.options = [
            "--root",
            str(directory / "storage"),
            "--runroot",
            str(directory / "run"),
            "--storage-driver",
            "overlay",
        ]

    def buildah(self, *args: str) -> str:
        result = subprocess.run(
            ["buildah", *self.options, *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    @contextmanager
    def rootfs(self, archive: Path) -> Iterator[Path]:
        """The image's layers, mounted as one root filesystem."""
        container = self.buildah("from", f"oci-archive:{archive}")
        try:
            yield Path(self.buildah("mount", container))
        finally:
            self.buildah("rm", container)

    def remove(self) -> None:
        """Unmount whatever buildah left under the directory, then delete it without
        ever crossing into another file system."""
        subprocess.run(["buildah", *self.options, "rm", "--all"], capture_output=True)
        prefix = f"{self.directory}/"
        mounts = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(prefix)
        ]
        for mount in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.directory)], check=False)


def _bundle(bundle: Path, rootfs: Path, config: dict[str, Any], args: list[str]) -> Path:
    """A runc bundle for ``args`` in a container of ``rootfs`` as a pod's: the image's
    user and environment, its working directory, a read-only root, no network."""
    bundle.mkdir(parents=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True, timeout=COMMAND_SECONDS)
    spec = json.loads((bundle / "config.json").read_text())
    image = config["config"]
    uid, _, gid = image["User"].partition(":")
    spec["process"].update(
        terminal=False,
        user={"uid": int(uid), "gid": int(gid or uid)},
        args=args,
        env=image.get("Env", []),
        cwd=image.get("WorkingDir") or "/",
    )
    spec["root"] = {"path": str(rootfs), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle / "state"


def _delete(state: Path, name: str) -> None:
    subprocess.run(
        ["runc", "--root", str(state), "delete", "--force", name],
        capture_output=True,
        timeout=COMMAND_SECONDS,
    )
    shutil.rmtree(state, ignore_errors=True)


def run_container(
    bundle: Path, rootfs: Path, config: dict[str, Any], args: list[str]
) -> subprocess.CompletedProcess[str]:
    """``args`` run to their end in a container (:func:`_bundle`)."""
    state = _bundle(bundle, rootfs, config, args)
    try:
        return subprocess.run(
            ["runc", "--root", str(state), "run", "--bundle", str(bundle), bundle.name],
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    finally:
        _delete(state, bundle.name)


def serve_until(
    bundle: Path, rootfs: Path, config: dict[str, Any], args: list[str], line: str
) -> list[str]:
    """Start a server in a container (:func:`_bundle`), read its stderr until a line
    holding ``line`` (or its exit, or the deadline), then kill it; its stderr lines."""
    state = _bundle(bundle, rootfs, config, args)
    process = subprocess.Popen(
        ["runc", "--root", str(state), "run", "--bundle", str(bundle), bundle.name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[str] = []
    deadline = threading.Timer(COMMAND_SECONDS, process.kill)
    deadline.start()
    try:
        for output in process.stderr:
            seen.append(output)
            if line in output:
                break
    finally:
        deadline.cancel()
        _delete(state, bundle.name)  # kills the container; runc run then exits
        process.wait(timeout=COMMAND_SECONDS)
    return seen
