"""Why a managed Secret is not current: fixed strings, safe to log and to put in Events.

Reasons never carry a token or any Secret value; the enum makes that structural (no
formatting with data) and lets the reconciler branch on the kind of repair needed.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    CURRENT = "secret is up to date"
    MISSING = "secret does not exist"
    NOT_MANAGED = "a secret with this name exists and is not managed by registry-v2-policy"
    WRONG_NAME = "secret name or namespace does not match the ServiceAccount"
    WRONG_TYPE = "secret type is not kubernetes.io/dockerconfigjson"
    WRONG_OWNER = "secret is not owned by this ServiceAccount uid (ServiceAccount recreated?)"
    METADATA_DRIFT = "secret labels or annotations differ from the managed ones"
    BAD_DATA = "secret .dockerconfigjson is missing or unreadable"
    TOKEN_TIMES_INVALID = "token issue or expiration time is missing or invalid"
    HOSTNAMES_CHANGED = "registry hostnames differ from the desired ones"
    TOKEN_EXPIRING = "token reached 60% of its lifetime"
    AUDIENCE_CHANGED = "token audiences differ from the desired ones"
    SIGNING_KEY_CHANGED = "token was signed by a key the API server no longer signs with"

    @property
    def needs_recreate(self) -> bool:
        """Delete and create again: type is immutable, and a token minted for a previous SA
        with the same name is invalid (its uid claim no longer matches)."""
        return self in (Reason.MISSING, Reason.WRONG_TYPE, Reason.WRONG_OWNER)

    @property
    def needs_new_token(self) -> bool:
        """Request a fresh token and rewrite the data."""
        return self.needs_recreate or self in (
            Reason.BAD_DATA,
            Reason.TOKEN_TIMES_INVALID,
            Reason.HOSTNAMES_CHANGED,
            Reason.TOKEN_EXPIRING,
            Reason.AUDIENCE_CHANGED,
            Reason.SIGNING_KEY_CHANGED,
        )
