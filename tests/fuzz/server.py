"""The real server, gunicorn over TLS, serving the fake-wired app; and how to watch it.

``python -m tests.fuzz.server BIND CERTS_DIR`` runs what ``serve`` runs (``TlsServer``:
TLS 1.2+, gthread workers, the same keep-alive and limits) around ``fake_app``, so the fuzz
runs go through TLS, gunicorn's HTTP parser and the worker threads without a cluster.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from serving import devcerts
from serving.tlsserver import TlsServer
from tests.fuzz.fakes import fake_app

WORKERS = 1
"""One worker, so one process holds the app and its RSS is the server's."""
THREADS = 64
"""``serve``'s default ``--threads``."""


@dataclass(frozen=True)
class ServerProcess:
    """A running fuzz server: where to reach it, and its processes."""

    url: str
    ca_file: str
    arbiter_pid: int
    log_path: Path

    def worker_pids(self) -> list[int]:
        """gunicorn's worker processes: the arbiter's children."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the process ended while we looked
            if int(fields[1]) == self.arbiter_pid:
                children.append(int(stat.parent.name))
        return sorted(children)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", line
            return int(value) * 1024
    raise LookupError(f"no VmRSS for process {pid}")


def main(argv: list[str]) -> int:
    bind, certs_dir = argv
    files = devcerts.ensure(Path(certs_dir), ["127.0.0.1"])
    TlsServer(
        fake_app,
        bind=bind,
        cert_file=str(files.cert_file),
        key_file=str(files.key_file),
        workers=WORKERS,
        threads=THREADS,
        log_level="warning",
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
