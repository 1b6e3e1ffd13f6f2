"""How a door finds its serving certificate, and what it says without one."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from serving import server
from serving.config import ServingConfig
from serving.server import serving_files
from serving.workermetrics import ENVIRONMENT_VARIABLE


def test_a_door_without_a_certificate_says_which_door_and_what_to_give() -> None:
    with pytest.raises(SystemExit, match=r"^frontdoor needs its TLS certificate: give --tls-cert"):
        serving_files(ServingConfig(process="frontdoor", bind=":0"))


def test_given_files_win_over_development_certificates(tmp_path: Path) -> None:
    config = ServingConfig(
        process="serve",
        bind=":0",
        tls_cert_file=Path("/c"),
        tls_private_key_file=Path("/k"),
        dev_certs_dir=tmp_path / "dev",
    )
    assert serving_files(config) == (Path("/c"), Path("/k"), None)
    assert not (tmp_path / "dev").exists()


def test_development_certificates_name_the_configured_hosts(tmp_path: Path) -> None:
    config = ServingConfig(
        process="serve", bind=":0", dev_certs_dir=tmp_path, certificate_hosts=("door.example",)
    )
    cert, key, ca = serving_files(config)
    assert ca == tmp_path / "ca.crt" and cert.exists() and key.exists()
    assert b"BEGIN CERTIFICATE" in cert.read_bytes()


def test_the_server_processes_are_named_after_their_door(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    class Recorded:
        def __init__(self, *args: object, **options: object) -> None:
            seen.update(options)

        def run(self) -> None:
            pass

    monkeypatch.setattr(server, "TlsServer", Recorded)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    config = ServingConfig(process="frontdoor", bind=":0", dev_certs_dir=tmp_path / "certs")
    assert server.serve(config, lambda: Flask(__name__)) == 0
    assert seen["proc_name"] == "image-registry-webhook frontdoor"
