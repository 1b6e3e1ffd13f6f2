"""A real CNCF distribution registry on loopback: the upstream the front door guards.

``make dev`` and the tests run the registry itself, not a stand-in, so that what the front
door forwards (blob uploads, manifest PUTs, Location headers) is checked by the real thing.
It serves TLS with a certificate from a development CA of its own (``serving.devcerts``),
stores blobs on the filesystem under its directory, and deletes what the controller asks.
"""

from __future__ import annotations

import json
import os
import secrets
from http import HTTPStatus
from pathlib import Path
from typing import Any

import requests

from localcluster.ocitools import registry_binary
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.waiting import wait_for
from serving import devcerts

HOSTS = ["127.0.0.1", "localhost"]
"""Names the serving certificate is valid for: clients reach it on loopback only."""
READY_TIMEOUT_SECONDS = 30.0
"""How long :meth:`LocalRegistry.start` waits for ``GET /v2/``: it answers well within a
second of exec on a 2-core machine, so this only bounds a registry that never comes up."""
PROBE_SECONDS = 2.0
"""One readiness request to loopback."""
READY_POLL_SECONDS = 0.05
"""Between readiness requests: start-up takes a fraction of a second, and each probe is
one loopback request."""
SECRET_BYTES = 32
"""Entropy of ``http.secret``, which signs upload state between requests; distribution
generates one of this size itself when none is set, but then warns, and replicas differ."""
LOG_NAME = "registry"
UPLOAD_PURGING = {"enabled": True, "age": "1h", "interval": "10m", "dryrun": False}
"""distribution's ``storage.maintenance.uploadpurging``: upload sessions older than ``age``
are deleted every ``interval`` (its defaults: 168h and 24h). The front door cuts an
upload past the namespace's image limit and refuses one no push could follow, and a
client may walk away mid-upload: their bytes stay in the session until purged. An hour
is six times the longest the front door lets one request body take (600 s,
``frontdoor.main.UPLOAD_WAIT_SECONDS``), and the dev registry's blobs are small,
so no live push loses its session, while abandoned ones go within 70 minutes (the age
counts from the session's start, not from its last byte)."""


def registry_config(
    *,
    port: int,
    storage_dir: Path,
    cert_file: Path,
    key_file: Path,
    secret: str,
) -> dict[str, Any]:
    """The registry's configuration (distribution's docs/content/about/configuration.md).

    ``relativeurls``: Location headers are paths, so they stay right when a client reached
    the registry through the front door's address. ``delete.enabled``: distribution
    deletes a tag (``DELETE /v2/<name>/manifests/<tag>``) only with it (its
    DeleteManifest answers UNSUPPORTED otherwise), and the controller deletes the tags no
    ImageStream holds (issue 17, item 6). Clients delete only through the front door,
    which records the delete in the Image API first (issue 20), and only the front door
    and the controller reach the registry.
    No ``cache.blobdescriptor`` (distribution's example config has ``inmemory``): that
    repository-scoped cache takes any blob linked into a repository for a manifest
    revision, so a manifest uploaded as a plain blob would be served by digest, unjudged
    and uncharged (issue 17, item 1; docs/install.md says so for a user's own registry).
    ``maintenance.uploadpurging``: cut, refused and abandoned uploads are reclaimed.
    """
    return {
        "version": 0.1,
        "log": {"level": "info", "formatter": "json", "fields": {"service": "registry"}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage_dir)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": dict(UPLOAD_PURGING)},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": secret,
            "relativeurls": True,
            "tls": {"certificate": str(cert_file), "key": str(key_file)},
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
    }


class LocalRegistry:
    """The registry's files in ``directory`` and, once started, its process.

    Run it alone (:meth:`start`, :meth:`stop`) or under a supervisor that restarts it on
    exit: ``supervisor.run(LOG_NAME, registry.spawn)`` then ``registry.wait_ready()``. Each
    spawn reuses the port, certificate, secret and storage, so a restart loses nothing.
    """

    def __init__(
        self,
        directory: Path,
        *,
        log_dir: Path | None = None,
        binary: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.directory = directory
        self.log_dir = log_dir or directory / "logs"
        self.storage_dir = directory / "storage"
        self.config_file = directory / "config.yml"
        self.port = port or free_port()
        self._binary = binary
        self.process: ManagedProcess | None = None
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self._serving = devcerts.ensure(directory / "certs", HOSTS)
        config = registry_config(
            port=self.port,
            storage_dir=self.storage_dir,
            cert_file=self._serving.cert_file,
            key_file=self._serving.key_file,
            secret=secrets.token_hex(SECRET_BYTES),
        )
        # JSON is YAML, the registry's configuration format; the file holds the secret.
        self.config_file.write_text(json.dumps(config, indent=2))
        self.config_file.chmod(0o600)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the serving certificate: what clients must trust."""
        return self._serving.ca_file

    def spawn(self) -> ManagedProcess:
        """Start the registry process (a supervisor calls this again after each exit)."""
        binary = self._binary or registry_binary()
        env = dict(os.environ)
        # No OpenTelemetry exporter: the default OTLP one would dial localhost:4318.
        env["OTEL_TRACES_EXPORTER"] = "none"
        self.process = ManagedProcess(
            LOG_NAME,
            [str(binary), "serve", str(self.config_file)],
            self.log_dir,
            env=env,
            ports={"http": self.port},
        )
        return self.process

    def start(self, timeout: float = READY_TIMEOUT_SECONDS) -> LocalRegistry:
        """Start it unsupervised and wait until it serves; stop it if it never does."""
        self.spawn()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def ready(self) -> bool:
        """``GET /v2/`` answers 200: the API is served (the distribution spec's check)."""
        response = requests.get(f"{self.url}/v2/", verify=str(self.ca_file), timeout=PROBE_SECONDS)
        return response.status_code == HTTPStatus.OK

    def _exited(self) -> bool:
        return self.process is not None and not self.process.running()

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Until it serves; a registry that exits (a bad configuration) fails at once,
        with the tail of its log, rather than at the deadline."""
        wait_for(
            lambda: self._exited() or self.ready(),
            timeout=timeout,
            interval=READY_POLL_SECONDS,
            what=f"the registry at {self.url}",
        )
        if self._exited() and self.process is not None:
            raise RuntimeError(f"the registry exited:\n{self.process.log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
