"""tls_context: TLS 1.2 is our floor, whatever the platform's defaults would allow; and
gunicorn's own lines share the process's log handler."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from cli.logs import configure_logging
from webhook import devcerts
from webhook.tlsserver import WebhookServer, tls_context

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


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging and gunicorn's logger class rewire global loggers; undo it."""
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate)
        for name in ("", "gunicorn.error", "gunicorn.access")
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("level", ["info", "debug"])
def test_gunicorns_own_lines_go_through_the_process_handler(
    capsys: pytest.CaptureFixture[str], level: str
) -> None:
    """Start-up, worker boot and worker timeouts are gunicorn's error log: one JSON line
    each, at the level the process was given, like every other line of the process."""
    configure_logging(level, "json")
    server = WebhookServer(
        lambda: Flask(__name__),
        bind="127.0.0.1:0",
        cert_file="unused.crt",
        key_file="unused.key",
        workers=1,
        threads=1,
        log_level=level,
    )
    gunicorn_log = server.cfg.logger_class(server.cfg)
    gunicorn_log.info("Booting worker with pid: %s", 42)
    gunicorn_log.critical("WORKER TIMEOUT (pid:%s)", 42)
    gunicorn_log.debug("Arbiter booted")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    expected = [
        ("INFO", "Booting worker with pid: 42"),
        ("CRITICAL", "WORKER TIMEOUT (pid:42)"),
        *([("DEBUG", "Arbiter booted")] if level == "debug" else []),
    ]
    assert [(line["level"], line["msg"]) for line in lines] == expected
    assert {line["logger"] for line in lines} == {"gunicorn.error"}
