"""What nodes must trust to pull from the registry, OpenShift's ``image-registry-certificates``:
one ConfigMap key per registry hostname the pull secrets name, each holding the CA bundle
that signed the front door's serving certificate. The controller writes it; the node-ca
DaemonSet mirrors it into containerd's ``certs.d`` on every node.

The decision is read from the Secret, the hostnames and the ConfigMap alone, so it survives
restarts and failovers with no memory of past writes:

1. the Secret ``image-registry-frontdoor-tls`` has a PEM ``ca.crt``: the ConfigMap holds
   that bundle under every hostname's key (created, or updated when the bundle or the
   hostnames changed: a CA rotation or a new route);
2. no Secret, no ``ca.crt``, or one that is not PEM: nothing to trust. No ConfigMap is
   created; an existing one is emptied, so the nodes drop what they trusted (a stale CA
   left trusted would outlive the rotation that retired it).

Keys follow OpenShift: ``:`` is not allowed in a ConfigMap key, so ``host:port`` is
written ``host..port`` (cluster-image-registry-operator, ``pkg/resource/imageregistryca.go``:
``strings.ReplaceAll(internalHostname, ":", "..")``), and read back by turning the *last*
``..`` into ``:`` (its node-ca script: ``sed -r 's/(.*)\\.\\./\\1:/'``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from quota.objects import Obj, mapping, metadata
from quota.pullsecrets.names import LABEL_MANAGED_BY, LABEL_MANAGED_BY_VALUE

CONFIGMAP_NAME: Final = "image-registry-certificates"
"""OpenShift's name for the same ConfigMap (in node-ca's namespace, which its pods mount)."""
FRONTDOOR_TLS_SECRET: Final = "image-registry-frontdoor-tls"
"""The front door's serving Secret (manifests/components/frontdoor); cert-manager writes
``ca.crt`` beside ``tls.crt``, and docs/install.md asks for it when users bring their own."""
CA_KEY: Final = "ca.crt"
PORT_SEPARATOR: Final = ".."
"""What stands for ``:`` in a key (OpenShift's encoding)."""
MAX_KEY_LENGTH: Final = 253
"""A ConfigMap key: at most 253 characters of ``[-._a-zA-Z0-9]`` (IsConfigMapKey)."""
_KEY_CHARACTERS: Final = re.compile(r"[-._a-zA-Z0-9]+")
_PEM_CERTIFICATE: Final = "-----BEGIN CERTIFICATE-----"
"""containerd appends the file to its pool with AppendCertsFromPEM and fails the pull
when no certificate is in it: publish nothing rather than a bundle that breaks pulls."""


def key_for_host(host: str) -> str | None:
    """The ConfigMap key of registry ``host`` (``host[:port]``); None when the host cannot
    be one (an IPv6 literal's brackets, or too long)."""
    key = host.replace(":", PORT_SEPARATOR)
    if len(key) > MAX_KEY_LENGTH or not _KEY_CHARACTERS.fullmatch(key) or key in (".", ".."):
        return None
    return key


def host_for_key(key: str) -> str:
    """The registry ``host[:port]`` a key names: its last ``..`` is the port's ``:``."""
    head, separator, port = key.rpartition(PORT_SEPARATOR)
    return f"{head}:{port}" if separator else key


class Reason(StrEnum):
    """Why the ConfigMap holds what it holds (the reconciler logs and reports it)."""

    PUBLISHED = "the front door's CA is published for every registry hostname"
    NO_SECRET = f"Secret {FRONTDOOR_TLS_SECRET} does not exist: no front door CA to publish"
    NO_CA = f"Secret {FRONTDOOR_TLS_SECRET} has no {CA_KEY}: no front door CA to publish"
    CA_NOT_PEM = (
        f"{CA_KEY} of Secret {FRONTDOOR_TLS_SECRET} holds no PEM certificate: not published"
    )

    @property
    def published(self) -> bool:
        return self is Reason.PUBLISHED


def read_ca_bundle(secret: Mapping[str, Any] | None) -> tuple[str | None, Reason]:
    """The PEM bundle in the Secret's ``ca.crt``, or None and why not."""
    if secret is None:
        return None, Reason.NO_SECRET
    value = mapping(secret.get("data")).get(CA_KEY)
    if not isinstance(value, str) or not value:
        return None, Reason.NO_CA
    try:
        bundle = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, Reason.CA_NOT_PEM
    if _PEM_CERTIFICATE not in bundle:
        return None, Reason.CA_NOT_PEM
    return bundle, Reason.PUBLISHED


def desired_data(hostnames: Iterable[str], bundle: str | None) -> dict[str, str]:
    """``data`` of the ConfigMap: the bundle under each hostname's key; {} without one."""
    if bundle is None:
        return {}
    return {key: bundle for host in hostnames if (key := key_for_host(host)) is not None}


class Action(StrEnum):
    NONE = "the ConfigMap is as wanted"
    CREATE = "the ConfigMap does not exist"
    UPDATE = "the ConfigMap holds other hostnames or another CA"


@dataclass(frozen=True)
class Plan:
    action: Action
    reason: Reason
    desired: Obj
    """The ConfigMap to write for CREATE and UPDATE (without a resourceVersion: the caller
    adds the one it read)."""
    skipped: tuple[str, ...] = field(default=())
    """Hostnames no ConfigMap key can name (an IPv6 literal): left out, and said."""


def desired_configmap(namespace: str, data: Mapping[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP_NAME,
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE},
        },
        "data": dict(data),
    }


def plan(
    namespace: str,
    secret: Mapping[str, Any] | None,
    hostnames: Iterable[str],
    existing: Mapping[str, Any] | None,
) -> Plan:
    """What to do with the ConfigMap, given the front door's Secret, the hostnames the
    pull secrets name, and the ConfigMap as it is (None: absent)."""
    hosts = list(hostnames)
    bundle, reason = read_ca_bundle(secret)
    data = desired_data(hosts, bundle)
    skipped = tuple(h for h in hosts if key_for_host(h) is None) if bundle is not None else ()
    desired = desired_configmap(namespace, data)
    if existing is None:
        action = Action.CREATE if data else Action.NONE
        return Plan(action, reason, desired, skipped)
    labels = mapping(metadata(existing).get("labels"))
    current = (
        mapping(existing.get("data")) == data
        and not existing.get("binaryData")
        and labels.get(LABEL_MANAGED_BY) == LABEL_MANAGED_BY_VALUE
    )
    return Plan(Action.NONE if current else Action.UPDATE, reason, desired, skipped)
