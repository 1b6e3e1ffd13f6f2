"""Who is pushing or pulling, and may they: the registry's credentials are Kubernetes
tokens with the registry's audience (a managed pull secret's, or ``kubectl create token
--audience``), reviewed with TokenReview; access is OpenShift's convention, checked with
SubjectAccessReview in the repository's namespace.

A client sends the token as the password of HTTP Basic (any username: ``docker login``
and the pull secret's ``auth`` field do that), or as a Bearer token, which our token
endpoint hands back for those same Basic credentials after a challenge (the flow every
registry client follows).
"""

from __future__ import annotations

import base64
import binascii
from typing import Final, Protocol

from quota.names import IMAGESTREAMS
from serving.callerreviews import User

PULL: Final = "pull"
PUSH: Final = "push"
DELETE: Final = "delete"
LAYERS_RESOURCE: Final = IMAGESTREAMS
LAYERS_SUBRESOURCE: Final = "layers"
VERBS: Final = {PULL: "get", PUSH: "update", DELETE: "delete"}
"""OpenShift's registry asks ``get`` (pull) or ``update`` (push) on
``imagestreams/layers``. For a delete it asks ``delete`` on ``images`` cluster-wide (its
``verifyPruneAccess``: the pruner's right, never a project's); here a delete is the
repository's own content management, so it is ``delete`` on ``imagestreams/layers`` in
the repository's namespace, OpenShift's resource with the verb its action names. The
shipped ClusterRoles grant: registry-viewer get; registry-editor get, update, delete."""
MAX_TOKEN_BYTES: Final = 16 * 1024
"""A service account token is about 1 KiB; a header past this is not a token."""


class TokenReviewer(Protocol):
    def authenticate(self, token: str, source: str) -> User | None: ...


class AccessReviewer(Protocol):
    def may(
        self, user: User, namespace: str, verb: str, resource: str, subresource: str = ""
    ) -> bool: ...


def token_from(authorization: str | None) -> str | None:
    """The token in an ``Authorization`` header (Basic password or Bearer), else None."""
    if not authorization or len(authorization) > MAX_TOKEN_BYTES:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def challenge(realm: str, service: str, scope: str | None) -> str:
    """A ``WWW-Authenticate`` Bearer challenge naming our token endpoint (the
    distribution token-auth flow)."""
    parts = [f'realm="{realm}"', f'service="{service}"']
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ",".join(parts)


def scope(repository: str, action: str) -> str:
    """The token scope a client asks for: ``repository:<name>:pull``, ``:pull,push`` or
    ``:delete`` (distribution's access record for a DELETE)."""
    actions = {PUSH: "pull,push", DELETE: "delete"}.get(action, "pull")
    return f"repository:{repository}:{actions}"


class Access:
    def __init__(self, tokens: TokenReviewer, reviews: AccessReviewer) -> None:
        self._tokens = tokens
        self._reviews = reviews

    def user(self, authorization: str | None, source: str) -> User | None:
        """The caller, or None without valid credentials. May raise ``TooManyReviews``."""
        token = token_from(authorization)
        if token is None:
            return None
        return self._tokens.authenticate(token, source)

    def allowed(self, user: User, namespace: str, action: str) -> bool:
        verb = VERBS[action]
        return self._reviews.may(user, namespace, verb, LAYERS_RESOURCE, LAYERS_SUBRESOURCE)
