"""Make one ServiceAccount's managed pull secret match the desired state.

Level-based: each call reads the current state (caches, then the API where a cache may
lag) and converges it, so a restart, a replayed event or a retry after a conflict only
repeats work that is already done. The plain Secret name is a function of the SA name, so
no sequence of events can produce a second Secret under it.

When someone else's Secret holds the plain name, the SA gets a fallback Secret whose name
the API server generates (``generateName``), so it cannot be taken first. That name is not
a function of anything, so before creating one the reconciler looks for the SA's own
(managed, owned by its uid, a generated name) in its cache and then, because the cache can
lag its own create of a moment ago, in a live list: only a live "none" leads to a create,
and one worker handles a key at a time, so no restart or replay makes a second one. The
plain name is preferred whenever it is free again; what is not the SA's current Secret is
retired.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kubernetes.client.exceptions import ApiException

from controller import metrics
from controller.pullsecrets.signingkey import SigningKey, key_id_of
from kube import apierrors
from kube.events import Recorder, reference
from kube.requeue import Requeue
from quota.objects import Obj, object_name
from quota.pullsecrets.desired_secret import (
    TokenGrant,
    build_desired_secret,
    fallback_placeholder,
    fallback_secrets,
    is_managed_secret,
    retired_secrets,
    secret_is_current,
    service_account_name_of,
)
from quota.pullsecrets.dockerconfig import desired_hostnames
from quota.pullsecrets.names import (
    ANNOTATION_PULL_SECRET_REF,
    DEFAULT_TOKEN_AUDIENCES,
    fallback_prefix,
    secret_name_for,
)
from quota.pullsecrets.reasons import Reason
from quota.pullsecrets.refresh import read_token_times, refresh_delay
from quota.pullsecrets.serviceaccount_patch import (
    add_pull_secret_patch,
    guard_resource_version,
    is_opted_out,
    remove_pull_secret_patch,
    replace_pull_secret_patch,
    retire_pull_secret_patch,
)

log = logging.getLogger(__name__)


class PullSecretCalls(Protocol):
    """The API calls the reconciler makes (``api.PullSecretApi`` makes them, rate limited)."""

    def read_secret(self, namespace: str, name: str) -> Obj | None: ...
    def list_managed_secrets(self, namespace: str) -> list[Obj]: ...
    def create_secret(self, namespace: str, body: Obj) -> Obj: ...
    def replace_secret(self, namespace: str, name: str, body: Obj) -> Obj: ...
    def delete_secret(self, namespace: str, name: str, uid: str) -> None: ...
    def request_token(
        self,
        namespace: str,
        sa_name: str,
        secret: Obj,
        lifetime_seconds: int,
        audiences: tuple[str, ...],
    ) -> tuple[str, dt.datetime]: ...
    def read_serviceaccount(self, namespace: str, name: str) -> Obj | None: ...
    def patch_serviceaccount(self, namespace: str, name: str, ops: list[Obj]) -> Obj: ...


class Cache(Protocol):
    def get(self, key: str) -> Obj | None: ...
    def list(self, namespace: str | None = None) -> list[Obj]: ...


@dataclass(frozen=True)
class PullSecretConfig:
    internal_hostnames: tuple[str, ...]
    extra_hostnames: tuple[str, ...]
    excluded_namespaces: frozenset[str]
    token_lifetime_seconds: int
    token_audiences: tuple[str, ...] = DEFAULT_TOKEN_AUDIENCES


class PullSecretReconciler:
    def __init__(
        self,
        *,
        api: PullSecretCalls,
        serviceaccounts: Cache,
        secrets: Cache,
        namespaces: Cache,
        registry_configs: Cache,
        recorder: Recorder,
        config: PullSecretConfig,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        signing_key: SigningKey | None = None,
    ) -> None:
        self._api = api
        self._serviceaccounts = serviceaccounts
        self._secrets = secrets
        self._namespaces = namespaces
        self._configs = registry_configs
        self._recorder = recorder
        self._config = config
        self._now = now
        self._signing_key = signing_key or SigningKey()

    def hostnames(self) -> list[str]:
        return desired_hostnames(
            self._configs.get("cluster"),
            self._config.extra_hostnames,
            self._config.internal_hostnames,
        )

    def reconcile(self, key: str) -> float | None:
        """Converge ``namespace/name``; return seconds until the next refresh is due."""
        namespace, _, name = key.partition("/")
        if namespace in self._config.excluded_namespaces:
            return None
        sa = self._serviceaccounts.get(key)
        if sa is None:
            self._delete_orphans(namespace, name)
            return None
        if (sa.get("metadata") or {}).get("deletionTimestamp"):
            return None
        ns = self._namespaces.get(namespace)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None  # the namespace is going away; its SAs and Secrets go with it
        labels = (ns.get("metadata") or {}).get("labels") or {}
        plain = secret_name_for(name)
        if is_opted_out(sa, labels):
            self._opt_out(sa, namespace, plain)
            return None
        secret = self._ensure_secret(sa, namespace, plain)
        secret_name = secret["metadata"]["name"]
        added = self._pointing_patch(sa, plain, secret_name)
        self._patch_serviceaccount(sa, added)
        if not added:  # the SA names the current Secret: now drop the ones it replaced
            self._retire_renamed(sa, namespace, secret_name)
        times = read_token_times((secret.get("metadata") or {}).get("annotations"))
        if times is None:
            return 1.0
        return refresh_delay(times.issued, times.expires, self._now()).total_seconds()

    # --- steps ---------------------------------------------------------------------------

    def _judge(self, secret: Obj | None, sa: Obj, hostnames: list[str], name: str) -> Reason:
        return secret_is_current(
            secret,
            sa,
            hostnames,
            self._now(),
            self._config.token_audiences,
            name,
            self._signing_key.current(),
        )[1]

    def _ensure_secret(self, sa: Obj, namespace: str, plain: str) -> Obj:
        """The SA's up-to-date Secret: under its plain name, or under a fallback name when
        the plain one is someone else's."""
        hostnames = self.hostnames()
        secret = self._secrets.get(f"{namespace}/{plain}")
        reason = self._judge(secret, sa, hostnames, plain)
        if reason is Reason.CURRENT and secret is not None:
            return secret
        created = False
        if reason is Reason.MISSING:
            # Create straight away: the name is deterministic, so a cache that lags our own
            # writes (or a user's Secret, which we do not watch) only costs an AlreadyExists.
            secret, created = self._create_or_read(sa, namespace, plain, hostnames)
            if not created:
                reason = self._judge(secret, sa, hostnames, plain)
                if reason is Reason.CURRENT:
                    return secret
        if reason is Reason.NOT_MANAGED:
            self._recorder.record(
                reference(sa, "ServiceAccount"),
                "Warning",
                "PullSecretNameTaken",
                f"Secret {plain} exists and is not managed by the registry: the "
                f"ServiceAccount uses {fallback_prefix(object_name(sa))}<generated> instead",
            )
            return self._ensure_fallback(sa, namespace, hostnames)
        if secret is None:  # unreachable: only MISSING has no Secret, and it was created
            raise Requeue(f"secret {namespace}/{plain} not found")
        return self._converge(sa, secret, reason, created, hostnames)

    def _ensure_fallback(self, sa: Obj, namespace: str, hostnames: list[str]) -> Obj:
        """The SA's fallback Secret, adopted when it has one (cache, then a live list: a
        create from a lagging cache would be a second Secret), else created."""
        found = fallback_secrets(self._secrets.list(namespace), sa) or fallback_secrets(
            self._api.list_managed_secrets(namespace), sa
        )
        if found:
            secret, created = dict(found[0]), False
        else:
            secret, created = self._create_fallback(sa, namespace, hostnames), True
        reason = self._judge(secret, sa, hostnames, secret["metadata"]["name"])
        if reason is Reason.CURRENT:
            return secret
        return self._converge(sa, secret, reason, created, hostnames)

    def _create_fallback(self, sa: Obj, namespace: str, hostnames: list[str]) -> Obj:
        """Create the placeholder under a name the API server generates. A generated name
        that is taken (the server retries a few itself) is a Requeue: the rate-limited
        retry generates another, so a taken fallback never spins."""
        try:
            return self._api.create_secret(namespace, fallback_placeholder(sa, hostnames))
        except ApiException as err:
            if apierrors.is_namespace_terminating(err):
                raise Requeue(f"namespace {namespace} is terminating") from None
            # The server's own retries found every name it generated taken (apiserver's
            # NewGenerateNameConflict says AlreadyExists).
            if apierrors.is_already_exists(err):
                raise Requeue(f"generated Secret name in {namespace} was taken") from None
            raise

    def _converge(
        self, sa: Obj, secret: Obj, reason: Reason, created: bool, hostnames: list[str]
    ) -> Obj:
        """Make ``secret`` (ours, under its name) current: recreate it, or mint a token
        bound to it and write it whole."""
        namespace, secret_name = secret["metadata"]["namespace"], secret["metadata"]["name"]
        if reason.needs_recreate and not created:
            log.info("recreating pull secret %s/%s: %s", namespace, secret_name, reason.value)
            self._api.delete_secret(namespace, secret_name, secret["metadata"]["uid"])
            raise Requeue(f"deleted stale secret {namespace}/{secret_name}")
        audiences = self._config.token_audiences
        token, expires = self._api.request_token(
            namespace,
            sa["metadata"]["name"],
            secret,
            self._config.token_lifetime_seconds,
            audiences,
        )
        grant = TokenGrant(
            token=token,
            issued=self._now(),
            expires=expires,
            audiences=audiences,
            key_id=key_id_of(token),
        )
        desired = build_desired_secret(sa, hostnames, grant, secret_name)
        desired["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
        try:
            written = self._api.replace_secret(namespace, secret_name, desired)
        except ApiException as err:
            # A stale resourceVersion, or the Secret deleted meanwhile.
            if apierrors.is_conflict(err) or apierrors.is_not_found(err):
                raise Requeue(f"secret {namespace}/{secret_name} changed while writing") from None
            raise
        action = "created" if created else "refreshed"
        metrics.PULL_SECRETS.labels(action).inc()
        log.info("pull secret %s/%s %s (%s)", namespace, secret_name, action, reason.value)
        return written

    def _create_or_read(
        self, sa: Obj, namespace: str, secret_name: str, hostnames: list[str]
    ) -> tuple[Obj, bool]:
        """Create the Secret without a token (a token is bound to the Secret's uid, so the
        Secret comes first); when it exists already, read it. True when we created it."""
        try:
            body = build_desired_secret(sa, hostnames, None)
            return self._api.create_secret(namespace, body), True
        except ApiException as err:
            if apierrors.is_namespace_terminating(err):
                raise Requeue(f"namespace {namespace} is terminating") from None
            if not apierrors.is_already_exists(err):
                raise
        existing = self._api.read_secret(namespace, secret_name)
        if existing is None:
            raise Requeue(f"secret {namespace}/{secret_name} vanished meanwhile")
        return existing, False

    def _patch_serviceaccount(self, sa: Obj, ops: list[Obj]) -> None:
        if not ops:
            return
        meta = sa["metadata"]
        try:
            self._api.patch_serviceaccount(
                meta["namespace"], meta["name"], guard_resource_version(ops, sa)
            )
        except ApiException as err:
            # The SA changed since the cache saw it: the patch's resourceVersion test failed
            # (a JSON patch test is Invalid, a stale resourceVersion a Conflict), or it is gone.
            if (
                apierrors.is_invalid(err)
                or apierrors.is_conflict(err)
                or apierrors.is_not_found(err)
            ):
                raise Requeue(
                    f"serviceaccount {meta['namespace']}/{meta['name']} changed"
                ) from None
            raise

    @staticmethod
    def _pointing_patch(sa: Obj, plain: str, secret_name: str) -> list[Obj]:
        """Ops pointing the SA at ``secret_name``. While a fallback is used, an entry for
        the taken plain name that the service added (the ref annotation still names it:
        the webhook added it while the name looked free, and it cannot see a squatter's
        Opaque Secret) goes in the same patch: pods must never pull with someone else's
        Secret. An entry the user wrote is theirs."""
        annotations = sa["metadata"].get("annotations") or {}
        if secret_name != plain and annotations.get(ANNOTATION_PULL_SECRET_REF) == plain:
            return replace_pull_secret_patch(sa, plain, secret_name)
        return add_pull_secret_patch(sa, secret_name)

    def _opt_out(self, sa: Obj, namespace: str, plain: str) -> None:
        fallbacks = fallback_secrets(self._secrets.list(namespace), sa)
        names = [plain, *(secret["metadata"]["name"] for secret in fallbacks)]
        self._patch_serviceaccount(sa, remove_pull_secret_patch(sa, *names))
        for secret_name in names:
            secret = self._secrets.get(f"{namespace}/{secret_name}")
            if secret is not None and is_managed_secret(secret):
                self._api.delete_secret(namespace, secret_name, secret["metadata"]["uid"])
                metrics.PULL_SECRETS.labels("deleted").inc()
                log.info("pull secret %s/%s deleted: opted out", namespace, secret_name)

    def _retire_renamed(self, sa: Obj, namespace: str, current: str) -> None:
        """The SA stops naming a retired Secret first, so no pod is admitted with a pull
        secret that is about to vanish; then the Secret goes."""
        for secret in retired_secrets(self._secrets.list(namespace), sa, current):
            meta = secret["metadata"]
            ops = retire_pull_secret_patch(sa, meta["name"])
            if ops:
                self._patch_serviceaccount(sa, ops)
                raise Requeue(f"serviceaccount {namespace}/{sa['metadata']['name']} changed")
            self._api.delete_secret(namespace, meta["name"], meta["uid"])
            metrics.PULL_SECRETS.labels("deleted").inc()
            log.info("pull secret %s/%s deleted: renamed", namespace, meta["name"])

    def _delete_orphans(self, namespace: str, sa_name: str) -> None:
        """Managed Secrets of a ServiceAccount the cache no longer has. The SA cache can
        lag the Secret cache (start-up, failover), so a live read confirms it is gone."""
        orphans = [
            secret
            for secret in self._secrets.list(namespace)
            if service_account_name_of(secret) == sa_name and is_managed_secret(secret)
        ]
        if not orphans:
            return
        if self._api.read_serviceaccount(namespace, sa_name) is not None:
            raise Requeue(f"serviceaccount {namespace}/{sa_name} exists but is not cached yet")
        for secret in orphans:
            meta = secret["metadata"]
            self._api.delete_secret(namespace, meta["name"], meta["uid"])
            metrics.PULL_SECRETS.labels("deleted").inc()
            log.info("pull secret %s/%s deleted: orphaned", namespace, meta["name"])
