"""The desired managed Secret for a ServiceAccount, and whether an existing one matches it."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from quota.objects import mapping, metadata
from quota.pullsecrets.dockerconfig import (
    EMPTY_DOCKERCONFIGJSON,
    DockerConfig,
    DockerConfigError,
    build_dockerconfigjson,
    decode_secret_value,
    parse_dockerconfigjson,
)
from quota.pullsecrets.names import (
    ANNOTATION_PULL_SECRET_REF,
    ANNOTATION_SERVICE_ACCOUNT_NAME,
    ANNOTATION_TOKEN_AUDIENCES,
    ANNOTATION_TOKEN_KEY_ID,
    DEFAULT_TOKEN_AUDIENCES,
    DOCKERCONFIGJSON_KEY,
    LABEL_MANAGED_BY,
    LABEL_MANAGED_BY_VALUE,
    SECRET_TYPE_DOCKERCONFIGJSON,
    fallback_prefix,
    is_fallback_name,
    secret_name_for,
)
from quota.pullsecrets.reasons import Reason
from quota.pullsecrets.refresh import (
    TokenTimes,
    read_token_times,
    refresh_reason,
    token_time_annotations,
)


@dataclass(frozen=True)
class ServiceAccountRef:
    """The identity of a ServiceAccount that a managed Secret depends on."""

    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, sa: Mapping[str, Any]) -> ServiceAccountRef:
        """Extract namespace, name and uid; ValueError if any is missing (not yet persisted)."""
        meta = metadata(sa)
        values = [meta.get(key) for key in ("namespace", "name", "uid")]
        strings = [v for v in values if isinstance(v, str) and v]
        if len(strings) != len(values):
            raise ValueError("ServiceAccount needs metadata.namespace, name and uid")
        return cls(*strings)


@dataclass(frozen=True)
class TokenGrant:
    """A token from the TokenRequest API. ``repr`` omits the token so it can be logged.

    ``expires`` should be the API server's ``status.expirationTimestamp`` (it may shorten the
    requested lifetime); ``issued`` is the reconciler's time of the request; ``key_id`` the
    ``kid`` of the token's header, empty when it has none.
    """

    token: str = field(repr=False)
    issued: datetime
    expires: datetime
    audiences: tuple[str, ...] = DEFAULT_TOKEN_AUDIENCES
    key_id: str = ""

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("token must not be empty")
        if not self.audiences:
            raise ValueError("a managed token needs an audience: the registry's")
        TokenTimes(self.issued, self.expires)  # validates awareness and order


@dataclass(frozen=True)
class SigningKeyId:
    """The key the API server signs tokens with now (its JWT ``kid``), and since when this
    service has known it. A token of another key issued before ``since`` predates the
    rotation; one issued after it was signed by a server still on its previous key (several
    API servers roll a new key one at a time) and is left to its clock, or every refresh
    would make another stale token."""

    key_id: str
    since: datetime

    def __post_init__(self) -> None:
        if not self.key_id:
            raise ValueError("key_id must not be empty")
        TokenTimes(self.since, self.since + timedelta(microseconds=1))  # validates awareness


def owner_reference(sa: Mapping[str, Any]) -> dict[str, Any]:
    """ownerReference making the garbage collector delete the Secret with its SA.

    ``controller: true``: the SA is the Secret's one managing owner. ``blockOwnerDeletion:
    false``: true would need ``update`` on ``serviceaccounts/finalizers`` under the
    OwnerReferencesPermissionEnforcement admission plugin, and only matters for foreground
    deletion; background deletion of the SA still removes the Secret.
    """
    ref = ServiceAccountRef.of(sa)
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "name": ref.name,
        "uid": ref.uid,
        "controller": True,
        "blockOwnerDeletion": False,
    }


def managed_metadata(sa: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations (without token times) every managed Secret carries."""
    ref = ServiceAccountRef.of(sa)
    return {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE}, {ANNOTATION_SERVICE_ACCOUNT_NAME: ref.name}


def audiences_annotation(audiences: Iterable[str]) -> str:
    """The audiences as recorded on the Secret: sorted, comma-separated."""
    return ",".join(sorted(set(audiences)))


def build_desired_secret(
    sa: Mapping[str, Any],
    hostnames: Iterable[str],
    grant: TokenGrant | None,
    name: str | None = None,
) -> dict[str, Any]:
    """The Secret the reconciler writes for ``sa``, under ``name`` (by default its plain
    name, :func:`secret_name_for`; a fallback's name is the one the API server generated).

    With ``grant=None`` this is the placeholder created first (empty ``auths``, no token
    times): a token can only be bound to a Secret that already exists (it needs its uid), so
    the reconciler creates this, requests a token bound to it, then writes the full Secret.
    """
    ref = ServiceAccountRef.of(sa)
    labels, annotations = managed_metadata(sa)
    if grant is None:
        payload = EMPTY_DOCKERCONFIGJSON
    else:
        payload = build_dockerconfigjson(hostnames, grant.token)
        annotations.update(token_time_annotations(grant.issued, grant.expires))
        annotations[ANNOTATION_TOKEN_AUDIENCES] = audiences_annotation(grant.audiences)
        if grant.key_id:
            annotations[ANNOTATION_TOKEN_KEY_ID] = grant.key_id
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SECRET_TYPE_DOCKERCONFIGJSON,
        "metadata": {
            "name": name or secret_name_for(ref.name),
            "namespace": ref.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(sa)],
        },
        "data": {DOCKERCONFIGJSON_KEY: base64.b64encode(payload).decode("ascii")},
    }


def fallback_placeholder(sa: Mapping[str, Any], hostnames: Iterable[str]) -> dict[str, Any]:
    """The placeholder created when the plain name is someone else's: no name, but
    ``generateName`` :func:`fallback_prefix`, so the API server picks a name no one holds."""
    secret = build_desired_secret(sa, hostnames, None)
    meta = secret["metadata"]
    del meta["name"]
    meta["generateName"] = fallback_prefix(ServiceAccountRef.of(sa).name)
    return secret


def is_managed_secret(secret: Mapping[str, Any]) -> bool:
    """True when the Secret carries either managed marker (label or SA-name annotation).

    Either suffices, so a Secret whose label was stripped is still recognised and repaired
    rather than treated as a user's Secret.
    """
    meta = metadata(secret)
    labels = mapping(meta.get("labels"))
    annotations = mapping(meta.get("annotations"))
    return (
        labels.get(LABEL_MANAGED_BY) == LABEL_MANAGED_BY_VALUE
        or ANNOTATION_SERVICE_ACCOUNT_NAME in annotations
    )


def service_account_name_of(secret: Mapping[str, Any]) -> str | None:
    """The SA a managed Secret belongs to (annotation), for mapping Secret events to SAs."""
    value = mapping(metadata(secret).get("annotations")).get(ANNOTATION_SERVICE_ACCOUNT_NAME)
    return value if isinstance(value, str) and value else None


def read_secret_config(secret: Mapping[str, Any]) -> DockerConfig | None:
    """The parsed ``.dockerconfigjson`` of a Secret; None when missing or unreadable."""
    payload = decode_secret_value(mapping(secret.get("data")).get(DOCKERCONFIGJSON_KEY))
    if payload is None:
        return None
    try:
        return parse_dockerconfigjson(payload)
    except DockerConfigError:
        return None


def _owned_by(secret: Mapping[str, Any], ref: ServiceAccountRef) -> bool:
    owners = metadata(secret).get("ownerReferences")
    return isinstance(owners, list) and any(
        isinstance(o, Mapping)
        and o.get("apiVersion") == "v1"
        and o.get("kind") == "ServiceAccount"
        and o.get("name") == ref.name
        and o.get("uid") == ref.uid
        for o in owners
    )


def may_reference(secret: Mapping[str, Any] | None, sa: Mapping[str, Any]) -> bool:
    """Whether a ServiceAccount may be pointed at ``secret``, the Secret (or its
    metadata) already under its managed name, or None when there is none yet.

    None: yes, the reconciler creates it under that name. Otherwise only a managed
    Secret owned by a ServiceAccount of this name: by this one's uid once it has one
    (UPDATE); at CREATE the SA has no uid yet, and a managed Secret owned by an SA of the
    same name is a previous incarnation's, which the reconciler replaces. Anything else
    is someone else's Secret: pods must never pull with a planted credential.
    """
    if secret is None:
        return True
    if not is_managed_secret(secret):
        return False
    meta = metadata(sa)
    name, uid = meta.get("name"), meta.get("uid")
    owners = metadata(secret).get("ownerReferences")
    return isinstance(owners, list) and any(
        isinstance(o, Mapping)
        and o.get("apiVersion") == "v1"
        and o.get("kind") == "ServiceAccount"
        and o.get("name") == name
        and (not uid or o.get("uid") == uid)
        for o in owners
    )


def retired_secrets(
    secrets: Iterable[Mapping[str, Any]], sa: Mapping[str, Any], current: str | None = None
) -> list[Mapping[str, Any]]:
    """Managed Secrets owned by ``sa`` under a name other than ``current``, the name of the
    Secret it uses now (by default its plain name).

    Until the long-name scheme put the hash after the suffix, SAs of more than 243
    characters had ``<truncated>-<hash>-dockercfg``; those Secrets are retired. So is a
    fallback once the plain name is free again, and the plain one while a fallback is used.
    """
    ref = ServiceAccountRef.of(sa)
    current = current or secret_name_for(ref.name)
    return [
        secret
        for secret in secrets
        if metadata(secret).get("name") != current
        and is_managed_secret(secret)
        and service_account_name_of(secret) == ref.name
        and _owned_by(secret, ref)
    ]


def fallback_secrets(
    secrets: Iterable[Mapping[str, Any]], sa: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The Secrets ``sa`` may use when its plain name is someone else's: managed, owned by
    this SA's uid, under a name generated from its :func:`fallback_prefix`.

    Best first: the one the SA's ref annotation names, then the oldest (then by name), so a
    second one (a create whose answer was lost) is adopted the same way each time and the
    others are retired.
    """
    ref = ServiceAccountRef.of(sa)
    recorded = mapping(metadata(sa).get("annotations")).get(ANNOTATION_PULL_SECRET_REF)
    found = [
        secret
        for secret in secrets
        if is_managed_secret(secret)
        and service_account_name_of(secret) == ref.name
        and _owned_by(secret, ref)
        and is_fallback_name(str(metadata(secret).get("name")), ref.name)
    ]

    def rank(secret: Mapping[str, Any]) -> tuple[bool, str, str]:
        meta = metadata(secret)
        name = str(meta.get("name"))
        return name != recorded, str(meta.get("creationTimestamp") or ""), name

    return sorted(found, key=rank)


def secret_is_current(
    existing: Mapping[str, Any] | None,
    sa: Mapping[str, Any],
    hostnames: Iterable[str],
    now: datetime,
    audiences: Iterable[str] = DEFAULT_TOKEN_AUDIENCES,
    name: str | None = None,
    signing_key: SigningKeyId | None = None,
) -> tuple[bool, Reason]:
    """Whether ``existing`` is the up-to-date managed Secret for ``sa`` under ``name`` (by
    default its plain name), and if not, why.

    Checks, first failure wins: exists; is managed (a user's Secret of the same name is never
    taken over); name and namespace; type; owner uid (catches an SA recreated under the same
    name); managed label/annotation; readable payload; token times; hostnames; 60 % rule;
    token audiences (a token minted for others, such as the API server, is replaced at once);
    signing key: when ``signing_key``, the key the API server signs with now, is known, a
    token signed by another key (or of unknown key: written before keys were recorded)
    before it became known is replaced at once. Its old key may still verify it, which is
    exactly when nothing else would: a rotation retires the old key once no token it
    signed should remain.
    The reason is a fixed :class:`Reason`, never containing Secret data.
    """
    ref = ServiceAccountRef.of(sa)
    if existing is None:
        return False, Reason.MISSING
    if not is_managed_secret(existing):
        return False, Reason.NOT_MANAGED
    meta = metadata(existing)
    if meta.get("name") != (name or secret_name_for(ref.name)) or (
        meta.get("namespace") != ref.namespace
    ):
        return False, Reason.WRONG_NAME
    if existing.get("type") != SECRET_TYPE_DOCKERCONFIGJSON:
        return False, Reason.WRONG_TYPE
    if not _owned_by(existing, ref):
        return False, Reason.WRONG_OWNER
    labels, annotations = managed_metadata(sa)
    have_labels = mapping(meta.get("labels"))
    have_annotations = mapping(meta.get("annotations"))
    if any(have_labels.get(k) != v for k, v in labels.items()) or any(
        have_annotations.get(k) != v for k, v in annotations.items()
    ):
        return False, Reason.METADATA_DRIFT
    times = read_token_times(have_annotations)
    reason = refresh_reason(times, read_secret_config(existing), hostnames, now)
    if reason is not None:
        return False, reason
    if have_annotations.get(ANNOTATION_TOKEN_AUDIENCES) != audiences_annotation(audiences):
        return False, Reason.AUDIENCE_CHANGED
    if (
        signing_key is not None
        and times is not None  # refresh_reason has refused None already
        and times.issued < signing_key.since
        and have_annotations.get(ANNOTATION_TOKEN_KEY_ID) != signing_key.key_id
    ):
        return False, Reason.SIGNING_KEY_CHANGED
    return True, Reason.CURRENT
