"""gunicorn over TLS around a worker's app, the way both doors are served: the serving
certificate (given, or development certificates), the master's summed metrics, and a hook
for when the server listens."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from kube import certs
from kube.metricsserver import serve_metrics
from kube.settings import Settings
from serving import devcerts
from serving.tlsserver import ReadLimits, WebhookServer
from serving.workermetrics import ENVIRONMENT_VARIABLE, master_registry, worker_exited


def _serving_files(settings: Settings) -> tuple[Path, Path, Path | None]:
    if settings.tls_cert_file and settings.tls_private_key_file:
        return settings.tls_cert_file, settings.tls_private_key_file, settings.ca_file
    if settings.dev_certs_dir:
        files = devcerts.ensure(
            settings.dev_certs_dir,
            certs.serving_hosts(settings.service_name, settings.namespace),
        )
        return files.cert_file, files.key_file, files.ca_file
    raise SystemExit(
        "a TLS server needs its certificate: give --tls-cert-file and "
        "--tls-private-key-file, or --dev-certs-dir"
    )


def serve(
    settings: Settings,
    app_factory: Callable[[], Flask],
    *,
    read_limits: ReadLimits | None = None,
    on_listening: Callable[[Path | None], None] | None = None,
) -> int:
    """gunicorn around ``app_factory`` (called in each worker after the fork); the master
    serves the workers' metrics, summed, and calls ``on_listening`` with the CA file once
    it listens (``serve`` registers its webhooks then)."""
    directory = Path(os.environ[ENVIRONMENT_VARIABLE])
    cert_file, key_file, ca_file = _serving_files(settings)

    def master_ready() -> None:
        serve_metrics(settings.metrics_bind_address, master_registry(directory, cert_file))
        if on_listening is not None:
            on_listening(ca_file)

    server = WebhookServer(
        app_factory,
        bind=settings.bind,
        cert_file=str(cert_file),
        key_file=str(key_file),
        client_ca_file=str(settings.client_ca_file) if settings.client_ca_file else None,
        workers=settings.workers,
        threads=settings.threads,
        on_ready=master_ready,
        on_worker_exit=worker_exited,
        log_level=settings.log_level,
        read_limits=read_limits,
    )
    server.run()
    return 0
