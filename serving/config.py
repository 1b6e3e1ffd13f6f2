"""How a door is served (gunicorn over TLS): the configuration ``serving.server`` takes.

Its own module, free of Flask, gunicorn and prometheus_client, so that the command can
read the defaults while it builds its parser, before the metrics directory is set up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kube.listener import DEFAULT_METRICS_BIND_ADDRESS

DEFAULT_WORKERS = 2
"""Worker processes per pod, one per core (one worker is one GIL): ``bench capacity``
measured 0.3-0.4x the bare Flask stack with one worker, 0.65-0.8x with two."""
DEFAULT_THREADS = 64
"""Requests each worker serves at once, above the API server's idle webhook connection
pool (25): ``bench capacity`` measured 16 and 64 alike, and 64 leaves room for reviews
waiting on the API server."""


@dataclass(frozen=True)
class ServingConfig:
    """One door's TLS server: where it listens, its certificate, its gunicorn processes."""

    process: str
    """The command that serves (``serve``, ``frontdoor``): its messages name it."""
    bind: str
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    dev_certs_dir: Path | None = None
    """Development only: make (or reuse) a CA and serving certificate here."""
    certificate_hosts: tuple[str, ...] = ()
    """The names a development certificate carries."""
    client_ca_file: Path | None = None
    """When set, a client certificate signed by it is asked for (admission callers)."""
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS
    metrics_bind_address: str = DEFAULT_METRICS_BIND_ADDRESS
    log_level: str = "INFO"

    def certificate_problem(self) -> str | None:
        """Why this door cannot serve TLS, in a line naming its command; None when it can.
        The command checks it before it binds a port."""
        if (self.tls_cert_file and self.tls_private_key_file) or self.dev_certs_dir:
            return None
        return (
            f"{self.process} needs its TLS certificate: give --tls-cert-file and "
            "--tls-private-key-file, or --dev-certs-dir"
        )
