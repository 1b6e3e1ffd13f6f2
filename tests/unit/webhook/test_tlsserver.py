"""The TLS layer: TLS 1.2 is our floor whatever the platform allows, and certificate files
swapped on disk are served without a restart."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kube import certs
from localcluster.binaries import REPO_ROOT
from localcluster.ports import free_port
from localcluster.processes import ManagedProcess
from localcluster.secretvolume import project
from localcluster.waiting import wait_for
from tests.fuzz.server import ServerProcess
from webhook import devcerts
from webhook.tlsserver import ReloadingTlsContext, tls_context

DEADLINE = 10.0


def permissive_factory(files: devcerts.ServingFiles) -> ssl.SSLContext:
    """What a platform with a laxer OpenSSL policy would hand gunicorn: TLS 1.0 and up,
    every cipher (security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_file, files.key_file)
    with warnings.catch_warnings():  # Python deprecates naming TLS 1.0; we mean to
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(server: ssl.SSLContext, version: ssl.TLSVersion) -> str:
    """The protocol a client pinned to ``version`` agrees with ``server`` on loopback, or
    the name of the error that refused it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        connection.settimeout(DEADLINE)
        try:
            with server.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.minimum_version = version
        client.maximum_version = version
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw,
            client.wrap_socket(raw) as tls,
        ):
            return str(tls.version())
    except ssl.SSLError as err:
        return f"refused: {err.reason}"
    finally:
        thread.join(DEADLINE)
        listener.close()


@pytest.fixture
def files(tmp_path: Path) -> devcerts.ServingFiles:
    return devcerts.ensure(tmp_path, ["127.0.0.1"])


def test_the_platform_would_speak_tls_1_1_without_us(files: devcerts.ServingFiles) -> None:
    """Proof that the next test can fail: this machine's OpenSSL does TLS 1.1 when asked."""
    assert handshake(permissive_factory(files), ssl.TLSVersion.TLSv1_1) == "TLSv1.1"


def test_tls_1_1_is_refused_even_from_a_permissive_factory(files: devcerts.ServingFiles) -> None:
    context = tls_context(None, lambda: permissive_factory(files))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert handshake(context, ssl.TLSVersion.TLSv1_1).startswith("refused")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_spoken(files: devcerts.ServingFiles, version: ssl.TLSVersion) -> None:
    context = tls_context(None, lambda: permissive_factory(files))
    assert handshake(context, version) == version.name.replace("v1_", "v1.")


# --- certificate files swapped under a running server ---------------------------------

STARTUP_DEADLINE = 60.0
"""Importing Flask and forking the worker: seconds, several times that on 2 busy cores."""


def served_certificate(port: int) -> bytes:
    """The DER certificate the server presents to a new connection."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw,
        client.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def der(pair: certs.KeyPair) -> bytes:
    return x509.load_pem_x509_certificate(pair.cert_pem).public_bytes(serialization.Encoding.DER)


def volume_files(pair: certs.KeyPair, key: certs.KeyPair | None = None) -> dict[str, bytes]:
    return {"tls.crt": pair.cert_pem, "tls.key": (key or pair).key_pem}


@dataclass
class RunningServer:
    port: int
    volume: Path
    process: ManagedProcess
    first: certs.KeyPair

    def workers(self) -> list[int]:
        return ServerProcess("", "", self.process.pid, self.process.log_path).worker_pids()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The real gunicorn server reading its files from a kubelet-style Secret volume."""
    ca = certs.new_ca("reload-test-ca")
    first = certs.issue(ca, "first", hosts=["127.0.0.1"])
    volume = tmp_path / "tls"
    project(volume, volume_files(first))
    port = free_port()
    process = ManagedProcess(
        "tlsserver",
        [
            sys.executable,
            "-m",
            "tests.unit.webhook.tlsserver_process",
            f"127.0.0.1:{port}",
            str(volume / "tls.crt"),
            str(volume / "tls.key"),
        ],
        tmp_path,
        cwd=REPO_ROOT,
    )
    try:
        wait_for(lambda: served_certificate(port), timeout=STARTUP_DEADLINE, what="the server")
        yield RunningServer(port, volume, process, first)
    finally:
        process.stop()


def test_files_swapped_on_disk_are_served_to_the_next_connection(server: RunningServer) -> None:
    assert served_certificate(server.port) == der(server.first)
    workers = server.workers()
    renewed = certs.issue(certs.new_ca("next-ca"), "renewed", hosts=["127.0.0.1"])
    project(server.volume, volume_files(renewed))
    assert served_certificate(server.port) == der(renewed)
    assert server.workers() == workers, "no worker was restarted to load them"


def test_a_key_that_is_not_the_certificates_keeps_the_last_good_pair(
    server: RunningServer,
) -> None:
    """A reader that opens tls.crt after a swap and tls.key before it (or files written in
    place one after the other) sees a mismatched pair: no handshake may fail for that."""
    renewed = certs.issue(certs.new_ca("next-ca"), "renewed", hosts=["127.0.0.1"])
    project(server.volume, volume_files(renewed, key=server.first))
    assert served_certificate(server.port) == der(server.first)
    project(server.volume, volume_files(renewed))
    assert served_certificate(server.port) == der(renewed)


def test_the_context_is_built_once_per_version_of_the_files(tmp_path: Path) -> None:
    """A handshake on unchanged files reuses the context: no parse per connection."""
    first = certs.issue(certs.new_ca("ca"), "first")
    project(tmp_path, volume_files(first))
    config = SimpleNamespace(
        certfile=str(tmp_path / "tls.crt"), keyfile=str(tmp_path / "tls.key"), ca_certs=None
    )
    built: list[ssl.SSLContext] = []

    def factory() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config.certfile, config.keyfile)
        built.append(context)
        return context

    hook = ReloadingTlsContext()
    assert hook(config, factory) is hook(config, factory) is built[0]
    project(tmp_path, volume_files(certs.issue(certs.new_ca("ca"), "second")))
    assert hook(config, factory) is built[1]
    assert built[1].minimum_version == ssl.TLSVersion.TLSv1_2
    assert len(built) == 2


def test_files_that_never_loaded_are_an_error(tmp_path: Path) -> None:
    """Only a context that once loaded may stand in for files that do not."""
    first = certs.issue(certs.new_ca("ca"), "first")
    project(tmp_path, {"tls.crt": first.cert_pem, "tls.key": certs.new_ca("x").key_pem})
    config = SimpleNamespace(
        certfile=str(tmp_path / "tls.crt"), keyfile=str(tmp_path / "tls.key"), ca_certs=None
    )

    def factory() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config.certfile, config.keyfile)
        return context

    with pytest.raises(ssl.SSLError):
        ReloadingTlsContext()(config, factory)
