"""Which key the API server signs ServiceAccount tokens with now, so managed tokens signed
by an earlier key are refreshed when the cluster's signing key rotates, not on their clock.

A rotation keeps the old public key in ``--service-account-key-file`` for a while, so old
tokens still verify and nothing else would replace them before the old key is dropped.
The API server names the signing key in the ``kid`` header of every token it mints, and
the controller mints tokens itself: each one it mints says which key signs now, and a
short probe TokenRequest every :data:`KEY_PROBE_SECONDS` says so while nothing is minted
(OpenShift's controller watches the key id the same way).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

import jwt

log = logging.getLogger(__name__)

KEY_PROBE_SECONDS: Final = 60.0
"""How often the leader asks which key signs: a rotation reaches every managed Secret
within this and the backlog (about twelve Secrets a second at --kube-api-qps 50)."""
PROBE_TOKEN_SECONDS: Final = 600
"""Lifetime asked for the probe's token, which is read and dropped: the shortest the API
server grants (TokenRequest refuses expirationSeconds under 10 minutes)."""
PROBE_SERVICE_ACCOUNT: Final = "default"
"""The probe's ServiceAccount, in the service's own namespace (never managed): the
serviceaccount controller keeps it in every namespace, and the controller may mint tokens
for every ServiceAccount already."""


def key_id_of(token: str) -> str:
    """The ``kid`` in a JWT's header, read without verifying it (the API server just handed
    it to us); empty when the token is not a JWT or names no key."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        return ""
    return kid if isinstance(kid, str) else ""


class SigningKey:
    """The key id the API server signs with, as last seen; ``on_change`` runs (outside the
    lock) whenever it is learnt or changes, so every managed Secret is judged again."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._lock = threading.Lock()
        self._current = ""
        self.on_change = on_change

    def current(self) -> str:
        """The key id, empty until one is known (then no Secret is judged by its key)."""
        with self._lock:
            return self._current

    def observe(self, key_id: str) -> bool:
        """Record the key id of a token just minted; True when it is news."""
        if not key_id:
            return False
        with self._lock:
            previous, self._current = self._current, key_id
        if previous == key_id:
            return False
        log.info("service-account signing key is now %s (was %s)", key_id, previous or "unknown")
        self.on_change()
        return True
