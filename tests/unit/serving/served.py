"""Our real server in a child process: gunicorn, TLS and the app with fakes, no cluster.

For tests that need what Flask's test client has not: sockets, worker threads, and a
worker process whose memory can be read from /proc. ``python -m tests.unit.serving.served``
is the child; :func:`serve` starts it and stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from localcluster.binaries import REPO_ROOT
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.waiting import wait_for
from serving import devcerts
from serving.config import DEFAULT_THREADS
from serving.tlsserver import ReadLimits, TlsServer
from tests.fuzz.fakes import fake_app

STARTUP_SECONDS = 30.0
"""gunicorn forks its worker and the worker imports the app in about a second; a shared
2-core machine may be much slower."""


@dataclass(frozen=True)
class Served:
    port: int
    ca_file: Path
    process: ManagedProcess

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def post(
        self, path: str, body: bytes, headers: dict[str, str], *, timeout: float
    ) -> requests.Response:
        return requests.post(
            self.url(path), data=body, headers=headers, verify=str(self.ca_file), timeout=timeout
        )

    def worker_pid(self) -> int:
        """The one gunicorn worker: the arbiter's child."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _status(entry / "status").get("PPid") == str(
                self.process.pid
            ):
                return int(entry.name)
        raise LookupError(f"no worker under the arbiter {self.process.pid}")

    def worker_memory_kib(self, field: str) -> int:
        """``VmRSS`` (resident now) or ``VmHWM`` (resident at the peak) of the worker."""
        value = _status(Path(f"/proc/{self.worker_pid()}/status"))[field]
        return int(value.split()[0])


def _status(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


@contextmanager
def serve(
    directory: Path,
    *,
    threads: int = DEFAULT_THREADS,
    read_limits: ReadLimits | None = None,
    port: int | None = None,
) -> Iterator[Served]:
    """The server on a free loopback port (or ``port``, to run a second replica beside
    one: they share it as pods share a Service), answering ``/healthz``; stopped on exit.
    ``read_limits`` are the server's own defaults when None."""
    port = port or free_port()
    certs = directory / "certs"
    devcerts.ensure(certs, ["127.0.0.1"])
    process = ManagedProcess(
        "served",
        [
            sys.executable,
            "-m",
            "tests.unit.serving.served",
            f"--port={port}",
            f"--certs-dir={certs}",
            f"--threads={threads}",
            f"--read-limits={json.dumps(asdict(read_limits or ReadLimits()))}",
        ],
        directory / "logs",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=REPO_ROOT,
    )
    served = Served(port, certs / "ca.crt", process)

    def healthy() -> bool:
        if not process.running():
            raise RuntimeError("the server exited:\n" + process.log_tail())
        response = requests.get(served.url("/healthz"), verify=str(served.ca_file), timeout=5)
        return response.status_code == 200

    try:
        wait_for(healthy, timeout=STARTUP_SECONDS, interval=0.1, what="the server's /healthz")
        yield served
    finally:
        process.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certs-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--read-limits", type=json.loads, required=True)
    args = parser.parse_args(argv)
    files = devcerts.ensure(args.certs_dir, ["127.0.0.1"])
    TlsServer(
        fake_app,
        bind=f"127.0.0.1:{args.port}",
        cert_file=str(files.cert_file),
        key_file=str(files.key_file),
        workers=1,  # one process holds the app: its memory is the server's
        threads=args.threads,
        log_level="warning",
        read_limits=ReadLimits(**args.read_limits),
    ).run()


if __name__ == "__main__":
    main()
