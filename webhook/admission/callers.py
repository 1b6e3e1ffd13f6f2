"""Who may send an AdmissionReview: only the API server, proven by its client certificate.

Admission paths change state (the quota charge), so a review forged by anyone who can
reach the port must change nothing. The TLS layer asks every client for a certificate
(``CERT_OPTIONAL``: PushReview callers and probes present none) and verifies any it gets
against ``--client-ca-file``; here the admission routes insist that one was verified.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, Final

from flask import Response

from serving.httpjson import json_error

SOCKET_KEY: Final = "gunicorn.socket"
"""Where gunicorn puts the connection's socket in the WSGI environ."""

REFUSAL: Final = (
    "admission reviews are accepted only from the API server: present a client certificate "
    "signed by the webhook's client CA (--client-ca-file)"
)


VERIFIED_ATTRIBUTE: Final = "_registry_v2_peer_verified"
"""Where the answer for a connection is kept, on its socket: its peer is settled by its
handshake, and ``getpeercert()`` decodes the whole certificate into a dict on every call
(2 % of a worker's samples at saturation, py-spy, bench capacity)."""


def has_verified_client_certificate(environ: dict[str, Any]) -> bool:
    """True when the TLS peer presented a certificate that the handshake verified;
    asked of the socket once per connection, not per review.

    With ``CERT_OPTIONAL`` a certificate that fails verification fails the handshake, so
    a non-empty ``getpeercert()`` means "verified"; no certificate gives None or {}.
    """
    sock = environ.get(SOCKET_KEY)
    known = getattr(sock, VERIFIED_ATTRIBUTE, None)
    if known is not None:
        return bool(known)
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return False
    try:
        verified = bool(getpeercert())
    except (ValueError, OSError):  # not connected any more, or not a TLS socket
        return False
    # A socket class without attributes of its own is asked each time.
    with suppress(AttributeError):
        setattr(sock, VERIFIED_ATTRIBUTE, verified)
    return verified


def refused() -> Response:
    """401 before the body is read; the connection closes, as the body stays unread."""
    response = json_error(401, REFUSAL)
    response.headers["Connection"] = "close"
    return response
