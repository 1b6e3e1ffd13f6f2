"""``python -m tests.unit.serving.tlsserver_process BIND CERT KEY``: ``TlsServer`` (the
gunicorn TLS server ``serve`` runs) around a one-route app, for tests of its TLS layer."""

from __future__ import annotations

import sys

from flask import Flask

from serving.tlsserver import TlsServer


def app() -> Flask:
    flask = Flask(__name__)
    flask.add_url_rule("/", "ok", lambda: "ok")
    return flask


def main(argv: list[str]) -> int:
    bind, cert_file, key_file = argv
    TlsServer(app, bind=bind, cert_file=cert_file, key_file=key_file, workers=1, threads=4).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
