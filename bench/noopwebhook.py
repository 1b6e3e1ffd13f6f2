"""A webhook that allows everything and does nothing else: the floor of any out-of-process
admission webhook written in Python, for the latency benchmark's reference arms.

``python -m bench.noopwebhook PORT CERT KEY``: the standard library's threading HTTP server
over TLS with keep-alive, answering each AdmissionReview with its uid and ``allowed``;
``GET /count`` says how many it answered (so the benchmark knows the API server calls it).
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def allow(body: bytes) -> bytes:
    """The AdmissionReview answer that allows the request ``body`` carries."""
    review = json.loads(body)
    uid = (review.get("request") or {}).get("uid", "")
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": True},
        }
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the API server's client expects
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK (40 ms on Linux), which would be measured instead of the webhook.
    disable_nagle_algorithm = True
    answered = 0
    lock = threading.Lock()

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with _Handler.lock:
            _Handler.answered += 1
        self._send(allow(body))

    def do_GET(self) -> None:
        self._send(str(_Handler.answered).encode())

    def log_message(self, format: str, *args: object) -> None:
        """No line per request: the floor should not pay for logging."""


def main(argv: list[str]) -> None:
    port, cert, key = int(argv[0]), argv[1], argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
