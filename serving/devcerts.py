"""Development certificates: a CA and a serving certificate, created once and reused."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from kube import certs

_RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True)
class ServingFiles:
    cert_file: Path
    key_file: Path
    ca_file: Path


def ensure(directory: Path, hosts: list[str]) -> ServingFiles:
    """Reuse the files in ``directory`` while valid for a week more, else write new ones."""
    files = ServingFiles(directory / "tls.crt", directory / "tls.key", directory / "ca.crt")
    present = all(p.exists() for p in (files.cert_file, files.key_file, files.ca_file))
    if present and certs.not_after(files.cert_file.read_bytes()) - _RENEW_BEFORE > dt.datetime.now(
        dt.UTC
    ):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca = certs.new_ca("registry-webhook-dev-ca")
    serving = certs.issue(ca, "image-registry-webhook", hosts=hosts)
    serving.write(files.cert_file, files.key_file)
    files.ca_file.write_bytes(ca.cert_pem)
    return files
