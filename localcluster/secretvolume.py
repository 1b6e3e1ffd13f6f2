"""A Secret mirrored into a directory the way the kubelet updates a Secret volume.

The kubelet's AtomicWriter (``pkg/volume/util/atomic_writer.go``) writes every key into a
new hidden timestamped directory, then points the ``..data`` symlink at it with one rename;
each key is a symlink ``<key> -> ..data/<key>``. So one path always resolves to a whole
old file or a whole new one, but two reads (a certificate, then its key) may straddle a
swap: the reader has to cope, and the local stack should make it cope as in a cluster.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

DATA_LINK = "..data"


def project(directory: Path, files: Mapping[str, bytes]) -> None:
    """Make ``directory`` hold exactly ``files``, swapped in at once as the kubelet does."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    version = Path(tempfile.mkdtemp(prefix=stamp, dir=directory))
    for key, data in files.items():
        # Owner-only from the first byte: these are keys.
        fd = os.open(version / key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    link = directory / DATA_LINK
    previous = os.readlink(link) if link.is_symlink() else None
    staged = directory / f"{DATA_LINK}_tmp"
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()
    os.symlink(version.name, staged)
    os.replace(staged, link)  # the one atomic step
    for key in files:
        entry = directory / key
        if not entry.is_symlink():
            os.symlink(f"{DATA_LINK}/{key}", entry)
    for entry in directory.iterdir():
        if entry.is_symlink() and entry.name not in files and entry.name != DATA_LINK:
            entry.unlink()
    if previous is not None and previous != version.name:
        shutil.rmtree(directory / previous, ignore_errors=True)


class SecretVolume:
    """Keeps ``directory`` equal to some keys of a Secret, polling ``read`` every
    ``interval`` seconds (the kubelet's own sync is periodic too), until stopped."""

    def __init__(
        self,
        read: Callable[[], Mapping[str, bytes] | None],
        directory: Path,
        keys: tuple[str, ...],
        *,
        interval: float,
    ) -> None:
        self._read = read
        self.directory = directory
        self._keys = keys
        self._interval = interval
        self._stop = threading.Event()
        self._written: dict[str, bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="secret-volume", daemon=True)
        self.updates = 0
        """How many times the files were swapped."""

    def start(self) -> SecretVolume:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def ready(self) -> bool:
        """Whether every key has been written at least once."""
        return self._written is not None

    def sync(self) -> None:
        """One pass: project the Secret's keys if they changed. The Secret missing, or
        missing a key, leaves the files as they are (the kubelet waits, too)."""
        data = self._read()
        if data is None or not all(key in data for key in self._keys):
            return
        wanted = {key: data[key] for key in self._keys}
        if wanted != self._written:
            project(self.directory, wanted)
            self._written = wanted
            self.updates += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as err:  # an API server restart, say: try again next period
                log.debug("secret volume %s: %s", self.directory, err)
            self._stop.wait(self._interval)
