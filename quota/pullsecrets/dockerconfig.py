"""The ``.dockerconfigjson`` payload of a managed Secret, and the hostnames it must cover."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from quota.pullsecrets.names import DEFAULT_INTERNAL_HOSTNAMES

USERNAME: Final = "serviceaccount"
# What a managed Secret holds before its token is issued: the API server requires valid JSON
# in a dockerconfigjson Secret, and the token can only be bound to a Secret that exists.
EMPTY_DOCKERCONFIGJSON: Final = b'{"auths":{}}'


class DockerConfigError(ValueError):
    """The payload is not a docker config this service wrote.

    Messages are fixed strings: they never quote the payload, which holds a token.
    """


@dataclass(frozen=True)
class DockerConfig:
    """A parsed managed payload. ``repr`` omits the token so it can be logged."""

    hostnames: tuple[str, ...]
    token: str = field(repr=False)


def unique_hostnames(hostnames: Iterable[object]) -> list[str]:
    """Strip, drop empty and non-string values and duplicates, keeping first-seen order."""
    seen: dict[str, None] = {}
    for host in hostnames:
        if isinstance(host, str) and (stripped := host.strip()):
            seen.setdefault(stripped, None)
    return list(seen)


def _auth(token: str) -> str:
    return base64.b64encode(f"{USERNAME}:{token}".encode()).decode("ascii")


def build_dockerconfigjson(hostnames: Iterable[str], token: str) -> bytes:
    """Serialize the payload for ``hostnames`` and ``token``.

    Output is canonical (sorted keys, no whitespace), so equal inputs give byte-identical
    Secrets whatever the order of the hostnames, and an unchanged Secret is never rewritten.
    """
    hosts = unique_hostnames(hostnames)
    if not hosts:
        raise ValueError("at least one registry hostname is required")
    if not token:
        raise ValueError("token must not be empty")
    entry = {"username": USERNAME, "password": token, "auth": _auth(token)}
    doc = {"auths": {host: dict(entry) for host in hosts}}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def parse_dockerconfigjson(payload: bytes | str) -> DockerConfig:
    """Read back a payload written by :func:`build_dockerconfigjson`.

    Raises :class:`DockerConfigError` for anything else: undecodable or non-JSON data, no
    ``auths``, an entry with another username, a missing or inconsistent ``auth``, or entries
    that disagree on the token.
    """
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        doc = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DockerConfigError("payload is not UTF-8 JSON") from None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict) or not auths:
        raise DockerConfigError("payload has no auths entries")
    tokens: set[str] = set()
    for host, entry in auths.items():
        if not host.strip():
            raise DockerConfigError("auths has an empty hostname")
        if not isinstance(entry, dict) or entry.get("username") != USERNAME:
            raise DockerConfigError("auths entry is not for the serviceaccount user")
        password = entry.get("password")
        if not isinstance(password, str) or not password:
            raise DockerConfigError("auths entry has no password")
        if entry.get("auth") != _auth(password):
            raise DockerConfigError("auths entry has an inconsistent auth field")
        tokens.add(password)
    if len(tokens) != 1:
        raise DockerConfigError("auths entries carry different tokens")
    return DockerConfig(hostnames=tuple(auths), token=tokens.pop())


def decode_secret_value(value: object) -> bytes | None:
    """Decode one base64 ``data`` value of a Secret; None when absent or not base64."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def route_hostnames(registry_config: object) -> list[str]:
    """``spec.routes[].hostname`` of the registry Config object; [] for anything malformed."""
    if not isinstance(registry_config, Mapping):
        return []
    spec = registry_config.get("spec")
    routes = spec.get("routes") if isinstance(spec, Mapping) else None
    if not isinstance(routes, list):
        return []
    hosts: list[Any] = [r.get("hostname") for r in routes if isinstance(r, Mapping)]
    return unique_hostnames(hosts)


def internal_hostnames(internal_registry: str) -> tuple[str, ...]:
    """The registry Service's address and its ``.cluster.local`` form."""
    host, sep, port = internal_registry.partition(":")
    names = [internal_registry]
    if host.endswith(".svc"):
        names.append(f"{host}.cluster.local{sep}{port}")
    return tuple(names)


def desired_hostnames(
    registry_config: object = None,
    extra_hostnames: Iterable[str] = (),
    internal_hostnames: Iterable[str] = DEFAULT_INTERNAL_HOSTNAMES,
) -> list[str]:
    """Hostnames every managed Secret must cover, in stable order, de-duplicated.

    Internal service names first, then configured extras, then the Config's routes.
    ``registry_config`` is the ``configs.imageregistry.operator.alauda.io/cluster`` object
    as a dict, or None when it does not exist.
    """
    return unique_hostnames(
        [*internal_hostnames, *extra_hostnames, *route_hostnames(registry_config)]
    )
