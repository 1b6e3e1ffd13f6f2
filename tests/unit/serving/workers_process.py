"""``python -m tests.unit.serving.workers_process PORT METRICS_PORT DIR``: ``serve`` as the
command runs it (its metrics directory, ``serving.server.serve``) with two workers around an
app that counts what it answers and says which worker answered.

A worker is ready once ``DIR/ready-all`` or ``DIR/ready-<its pid>`` exists, so a test
decides when each worker's "caches" have synced.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from serving.config import ServingConfig
from serving.workermetrics import shared_directory

WORKERS = 2
ENDPOINT = "counted"
"""The ``endpoint`` label of the admissions this app counts."""


def main(argv: list[str]) -> int:
    port, metrics_port, directory = argv
    with shared_directory():
        from flask import Blueprint, Flask

        from serving import server as serve_main
        from serving.app import create_app
        from webhook.metrics import ADMISSION_REQUESTS

        control = Path(directory)

        def not_ready() -> str | None:
            if (control / "ready-all").exists() or (control / f"ready-{os.getpid()}").exists():
                return None
            return "caches not synced: test"

        def app() -> Flask:
            counted = Blueprint("counted", __name__)

            @counted.get("/count")
            def count() -> dict[str, int]:
                ADMISSION_REQUESTS.labels(ENDPOINT, "allowed").inc()
                return {"pid": os.getpid()}

            return create_app([counted], readiness=[not_ready])

        config = ServingConfig(
            process="serve",
            bind=f"127.0.0.1:{port}",
            dev_certs_dir=control / "certs",
            certificate_hosts=("127.0.0.1", "localhost"),
            metrics_bind_address=f"127.0.0.1:{metrics_port}",
            workers=WORKERS,
            threads=4,
            log_level="DEBUG",
        )
        return serve_main.serve(config, app)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
