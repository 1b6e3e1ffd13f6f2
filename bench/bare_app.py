"""The bare server stack: a Flask app that answers an AdmissionReview with a one-operation
JSON patch (and a PushReview with ``allowed``) and does nothing else, under gunicorn over
TLS. What our server costs above it is what our code costs; what it costs itself bounds
any server built on this stack.

``python -m bench.bare_app --bind HOST:PORT --cert F --key F [--client-ca F]
[--workers N --threads N --server plain|ours]``: ``plain`` is stock gunicorn gthread (the
issue's reference), ``ours`` is :class:`serving.tlsserver.TlsServer` (our worker class,
read deadlines and TLS context) around the bare app.
"""

from __future__ import annotations

import argparse
import base64
import json
import ssl
import sys
from typing import Any

from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication

from serving.tlsserver import TlsServer

PATCH = base64.b64encode(
    json.dumps(
        [{"op": "add", "path": "/metadata/annotations", "value": {"bench": "bare"}}]
    ).encode()
).decode()
"""The one operation every admission answer carries."""


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/<path:path>")
    def review(path: str) -> Response:
        body: dict[str, Any] = request.get_json(force=True)
        if "request" in body:
            answer: dict[str, Any] = {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "response": {
                    "uid": body["request"].get("uid"),
                    "allowed": True,
                    "patchType": "JSONPatch",
                    "patch": PATCH,
                },
            }
        else:
            answer = {**body, "status": {"allowed": True}}
        return Response(json.dumps(answer), mimetype="application/json")

    return app


class PlainGunicorn(BaseApplication):  # type: ignore[misc]
    """Stock gunicorn over TLS, asking for client certificates as our server does."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--server", choices=("plain", "ours"), default="plain")
    args = parser.parse_args(argv)
    if args.server == "ours":
        TlsServer(
            create_app,
            bind=args.bind,
            cert_file=args.cert,
            key_file=args.key,
            client_ca_file=args.client_ca,
            workers=args.workers,
            threads=args.threads,
            log_level="warning",
        ).run()
        return 0
    PlainGunicorn(
        {
            "bind": [args.bind],
            "certfile": args.cert,
            "keyfile": args.key,
            "ca_certs": args.client_ca,
            "cert_reqs": ssl.CERT_OPTIONAL if args.client_ca else ssl.CERT_NONE,
            "worker_class": "gthread",
            "workers": args.workers,
            "threads": args.threads,
            "keepalive": 30,
            "accesslog": None,
            "loglevel": "warning",
            "control_socket_disable": True,
        }
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
