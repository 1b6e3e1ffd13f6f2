"""gunicorn over TLS around a worker's app, the way both doors are served: the serving
certificate (given, or development certificates), the master's summed metrics, and a hook
for when the server listens."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from kube.metricsserver import serve_metrics
from serving import devcerts
from serving.config import ServingConfig
from serving.tlsserver import PROC_NAME, ReadLimits, TlsServer
from serving.workermetrics import ENVIRONMENT_VARIABLE, master_registry, worker_exited


def serving_files(config: ServingConfig) -> tuple[Path, Path, Path | None]:
    """The certificate, its key, and the CA file of development certificates (None for
    given files: their CA is the caller's to know)."""
    if config.tls_cert_file and config.tls_private_key_file:
        return config.tls_cert_file, config.tls_private_key_file, None
    if config.dev_certs_dir:
        files = devcerts.ensure(config.dev_certs_dir, list(config.certificate_hosts))
        return files.cert_file, files.key_file, files.ca_file
    raise SystemExit(config.certificate_problem())


def serve(
    config: ServingConfig,
    app_factory: Callable[[], Flask],
    *,
    read_limits: ReadLimits | None = None,
    on_listening: Callable[[Path | None], None] | None = None,
) -> int:
    """gunicorn around ``app_factory`` (called in each worker after the fork); the master
    serves the workers' metrics, summed, and calls ``on_listening`` with the development
    CA file (None for given files) once it listens (``serve`` registers its webhooks then)."""
    directory = Path(os.environ[ENVIRONMENT_VARIABLE])
    cert_file, key_file, dev_ca_file = serving_files(config)

    def master_ready() -> None:
        serve_metrics(config.metrics_bind_address, master_registry(directory, cert_file))
        if on_listening is not None:
            on_listening(dev_ca_file)

    server = TlsServer(
        app_factory,
        bind=config.bind,
        cert_file=str(cert_file),
        key_file=str(key_file),
        client_ca_file=str(config.client_ca_file) if config.client_ca_file else None,
        workers=config.workers,
        threads=config.threads,
        on_ready=master_ready,
        on_worker_exit=worker_exited,
        log_level=config.log_level,
        read_limits=read_limits,
        proc_name=f"{PROC_NAME} {config.process}",
    )
    server.run()
    return 0
