"""The file side of node-ca, kept thin: read the mounted ConfigMap and the node's
``certs.d``, and carry out a ``nodeca.plan.Plan``.

Each file is written to a temporary name in its directory and renamed over the old one
(``os.replace``, atomic within a file system), so containerd, which reads ``hosts.toml``
and the CA at each pull, never reads half a file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Final

from nodeca.plan import MARKER, REMOVE_ORDER, Plan, Present

log = logging.getLogger(__name__)

FILE_MODE: Final = 0o644
"""Certificates and configuration, no secret: readable as containerd's own files are."""
DIRECTORY_MODE: Final = 0o755


def read_mounted(certificates_dir: Path) -> dict[str, bytes]:
    """Each key of the mounted ConfigMap and its value. The kubelet keeps the keys as
    symlinks into ``..data``, itself a symlink it swaps to update them all at once; names
    starting with a dot are that machinery, not keys. A missing directory (the optional
    volume before the ConfigMap exists) holds no key."""
    mounted: dict[str, bytes] = {}
    try:
        entries = sorted(os.listdir(certificates_dir))
    except FileNotFoundError:
        return mounted
    for name in entries:
        path = certificates_dir / name
        if name.startswith(".") or not path.is_file():
            continue
        try:
            mounted[name] = path.read_bytes()
        except FileNotFoundError:  # swapped away while read: the next pass sees the new set
            continue
    return mounted


def read_present(hosts_dir: Path) -> dict[str, Present]:
    """Every entry under ``hosts_dir``: whether it is a directory carrying our marker, and
    (only for ours) the contents of our files."""
    present: dict[str, Present] = {}
    try:
        entries = sorted(os.listdir(hosts_dir))
    except FileNotFoundError:
        return present
    for name in entries:
        directory = hosts_dir / name
        # A symlink or a file under a host's name is someone's too: never written through.
        if directory.is_symlink() or not directory.is_dir():
            present[name] = Present(ours=False, files={})
            continue
        ours = (directory / MARKER).is_file()
        files = {}
        if ours:
            for child in REMOVE_ORDER:
                path = directory / child
                if path.is_file():
                    files[child] = path.read_bytes()
        present[name] = Present(ours=ours, files=files)
    return present


def write_atomically(path: Path, content: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def apply(hosts_dir: Path, steps: Plan) -> None:
    """Carry out ``steps`` in order; a failure stops here, the next pass plans again."""
    for write in steps.writes:
        directory = hosts_dir / write.directory
        directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        write_atomically(directory / write.name, write.content)
    for removal in steps.removals:
        directory = hosts_dir / removal.directory
        for name in REMOVE_ORDER:
            (directory / name).unlink(missing_ok=True)
        try:
            directory.rmdir()
        except OSError:  # someone put files of their own in it: theirs now, left in place
            log.warning("%s holds files node-ca did not write: left in place", directory)
