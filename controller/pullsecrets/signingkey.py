"""Which key the API server signs ServiceAccount tokens with now, so managed tokens signed
by an earlier key are refreshed when the cluster's signing key rotates, not on their clock.

A rotation keeps the old public key in ``--service-account-key-file`` for a while, so old
tokens still verify and nothing else would replace them before the old key is dropped.
The API server names the signing key in the ``kid`` header of every token it mints: the
leader mints a short probe token every :data:`KEY_PROBE_SECONDS` and reads it (OpenShift's
controller watches the key id the same way). Only the probe moves the current key, not
the tokens minted for Secrets: where several API servers roll a new key one at a time,
tokens from different servers name different keys, and following each would flap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Final

import jwt

from quota.pullsecrets.desired_secret import SigningKeyId

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
    """The key id the API server signs with, as last probed, and since when; ``on_change``
    runs (outside the lock) whenever it is learnt or changes, so every managed Secret is
    judged again."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._lock = threading.Lock()
        self._current: SigningKeyId | None = None
        self.on_change = on_change

    def current(self) -> SigningKeyId | None:
        """The key and since when; None until one is known (no Secret is judged by it)."""
        with self._lock:
            return self._current

    def observe(self, key_id: str, now: datetime) -> bool:
        """Record the key id of a probe token minted at ``now``; True when it is news."""
        if not key_id:
            return False
        with self._lock:
            previous = self._current
            if previous is not None and previous.key_id == key_id:
                return False
            self._current = SigningKeyId(key_id, now)
        was = previous.key_id if previous else "unknown"
        log.info("service-account signing key is now %s (was %s)", key_id, was)
        self.on_change()
        return True
