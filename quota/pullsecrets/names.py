"""Names, keys and defaults shared by the webhook and the reconciler.

The annotation keys, the opt-out key and the ``<sa>-dockercfg`` naming are the external
contract: users, pods and upgrades of this service rely on them, so they never change. The
managed-by label and the token timestamp annotations are this service's own choices.

A plain name can be taken before its ServiceAccount exists (anyone who may create Secrets
in the namespace knows it in advance). The fallback is a ``generateName`` prefix: the API
server appends a random suffix and creates the Secret under a name free at that instant,
so no one can take it first; the chosen name is recorded on the ServiceAccount.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from quota.names import GENERATED_SUFFIX_LENGTH, MAX_GENERATE_NAME_PREFIX, MAX_NAME_LENGTH

# On the managed Secret: which ServiceAccount it belongs to.
ANNOTATION_SERVICE_ACCOUNT_NAME: Final = "image.alauda.io/service-account.name"
# On the ServiceAccount: which Secret the service injected into imagePullSecrets.
ANNOTATION_PULL_SECRET_REF: Final = "image.alauda.io/internal-registry-pull-secret-ref"
# Namespace label or ServiceAccount annotation; the value "false" opts out.
OPT_OUT_KEY: Final = "image.alauda.io/managed-pull-secret"
OPT_OUT_VALUE: Final = "false"

# Label on every managed Secret, so the reconciler can watch only its own Secrets with a
# label selector. Deliberately a different key from OPT_OUT_KEY: one says "who wrote this",
# the other "does the user want this".
LABEL_MANAGED_BY: Final = "image.alauda.io/managed-by"
LABEL_MANAGED_BY_VALUE: Final = "registry-v2-policy"
MANAGED_SECRET_SELECTOR: Final = f"{LABEL_MANAGED_BY}={LABEL_MANAGED_BY_VALUE}"

# On the managed Secret: when the token inside was issued and when it expires (RFC 3339, UTC).
ANNOTATION_TOKEN_ISSUED: Final = "image.alauda.io/token-issued"
ANNOTATION_TOKEN_EXPIRATION: Final = "image.alauda.io/token-expiration"
# On the managed Secret: the audiences the token inside was minted for, comma-separated.
ANNOTATION_TOKEN_AUDIENCES: Final = "image.alauda.io/token-audiences"
# On the managed Secret: the key id (JWT ``kid``) of the key that signed the token inside,
# so a rotation of the cluster's signing key shows which tokens predate it.
ANNOTATION_TOKEN_KEY_ID: Final = "image.alauda.io/token-key-id"

# The audience of managed tokens: the registry's, never the API server's, so a pull secret
# that leaks to a registry host is no credential for the cluster's API (--token-audiences).
DEFAULT_TOKEN_AUDIENCES: Final[tuple[str, ...]] = ("image-registry.alauda.io",)

SECRET_TYPE_DOCKERCONFIGJSON: Final = "kubernetes.io/dockerconfigjson"
DOCKERCONFIGJSON_KEY: Final = ".dockerconfigjson"

DEFAULT_INTERNAL_HOSTNAMES: Final[tuple[str, ...]] = (
    "image-registry.image-registry-system.svc:5000",
    "image-registry.image-registry-system.svc.cluster.local:5000",
)

SECRET_NAME_SUFFIX: Final = "-dockercfg"
_HASH_LENGTH: Final = 10


def secret_name_for(sa_name: str) -> str:
    """Return the managed Secret name for a ServiceAccount name.

    ``<sa>-dockercfg`` when it fits in 253 characters. Otherwise the SA name is truncated and
    a hash of the full SA name keeps distinct long names distinct:
    ``<truncated>-dockercfg-<sha256[:10]>``, at most 253 characters. The hash comes after the
    suffix, so a long name's Secret never ends in ``-dockercfg`` and no SA can be created
    whose plain name is another SA's Secret. The truncation point is stripped of trailing
    ``-``/``.`` so the result stays a valid DNS subdomain.
    """
    if not sa_name:
        raise ValueError("ServiceAccount name must not be empty")
    name = sa_name + SECRET_NAME_SUFFIX
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(sa_name.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    tail = f"{SECRET_NAME_SUFFIX}-{digest}"
    head = sa_name[: MAX_NAME_LENGTH - len(tail)].rstrip("-.")
    return head + tail if head else tail.lstrip("-")


_GENERATED_SUFFIX: Final = re.compile(f"[a-z0-9]{{{GENERATED_SUFFIX_LENGTH}}}")


def fallback_prefix(sa_name: str) -> str:
    """The ``generateName`` of the Secret used when ``<sa>-dockercfg`` belongs to someone else.

    ``<sa>-dockercfg-``, the SA name truncated (and stripped of a trailing ``-``/``.``) so the
    prefix fits in :data:`MAX_GENERATE_NAME_PREFIX` (a longer one the API server would cut,
    losing the ``-dockercfg-``). It ends in ``-``, so no generated name
    ends in ``-dockercfg`` (a plain name) or in a 10-character hash (a long name's).
    """
    if not sa_name:
        raise ValueError("ServiceAccount name must not be empty")
    tail = SECRET_NAME_SUFFIX + "-"
    head = sa_name[: MAX_GENERATE_NAME_PREFIX - len(tail)].rstrip("-.")
    return head + tail if head else tail.lstrip("-")


def is_fallback_name(secret_name: str, sa_name: str) -> bool:
    """Whether the API server could have generated ``secret_name`` from ``sa_name``'s
    :func:`fallback_prefix`: that prefix and exactly the generated suffix after it."""
    prefix = fallback_prefix(sa_name)
    return secret_name.startswith(prefix) and bool(
        _GENERATED_SUFFIX.fullmatch(secret_name[len(prefix) :])
    )
