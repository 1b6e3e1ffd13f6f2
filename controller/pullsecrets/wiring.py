"""Wiring of the pull-secret reconciler: informers feed ServiceAccount keys to a queue."""

from __future__ import annotations

import base64
import datetime
import functools
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from controller import metrics
from controller.config import DEFAULT_RECONCILE, ReconcileConfig
from controller.pullsecrets.api import PullSecretApi
from controller.pullsecrets.reconciler import (
    PullSecretConfig,
    PullSecretReconciler,
)
from controller.pullsecrets.signingkey import (
    KEY_PROBE_SECONDS,
    PROBE_SERVICE_ACCOUNT,
    PROBE_TOKEN_SECONDS,
    SigningKey,
    key_id_of,
)
from kube.events import Recorder
from kube.informer import DELETED, Informer, wait_all_synced
from kube.ratelimit import RateLimiter
from kube.runner import Runner
from kube.transforms import projection, strip_managed_fields
from kube.workqueue import WorkQueue
from quota.names import CONFIGS, OPERATOR_GROUP, OPERATOR_VERSION
from quota.objects import Obj, object_key, object_name, object_namespace
from quota.pullsecrets.desired_secret import read_secret_config, service_account_name_of
from quota.pullsecrets.dockerconfig import build_dockerconfigjson
from quota.pullsecrets.names import DOCKERCONFIGJSON_KEY, MANAGED_SECRET_SELECTOR, OPT_OUT_KEY
from quota.pullsecrets.refresh import earliest_token_expiry

log = logging.getLogger(__name__)


def _labels(obj: Obj | None) -> dict[str, Any]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


TOKEN_STAND_IN = "cached"
"""What a cached managed Secret carries instead of its token: the reconciler judges the
payload's hostnames and shape, never the token, and a cache of 10,000 tokens is 10,000
credentials in the heap (and ~10 KiB each)."""


def cached_secret(secret: Obj) -> Obj:
    """A managed Secret without managedFields, its ``.dockerconfigjson`` rebuilt with the
    same hostnames and ``TOKEN_STAND_IN``; an unreadable payload is dropped (it reads as
    missing, which the reconciler treats alike). Only metadata is ever written back."""
    stripped = strip_managed_fields(secret)
    data = stripped.get("data")
    if not isinstance(data, dict) or DOCKERCONFIGJSON_KEY not in data:
        return stripped
    config = read_secret_config(stripped)
    rest = {k: v for k, v in data.items() if k != DOCKERCONFIGJSON_KEY}
    if config is not None:
        payload = build_dockerconfigjson(config.hostnames, TOKEN_STAND_IN)
        rest[DOCKERCONFIGJSON_KEY] = base64.b64encode(payload).decode("ascii")
    return {**stripped, "data": rest}


class SecretLister(Protocol):
    def list(self, namespace: str | None = None) -> list[Obj]: ...


def token_expiry_reader(secrets: SecretLister) -> Callable[[], float]:
    """A gauge function: the earliest expiry (Unix seconds) of the cached managed tokens,
    +Inf without any; computed at each scrape from the informer, so it is never stale."""

    def read() -> float:
        earliest = earliest_token_expiry(secrets.list())
        return math.inf if earliest is None else earliest.timestamp()

    return read


class PullSecretWiring:
    def __init__(
        self,
        api: client.ApiClient,
        config: PullSecretConfig,
        namespace: str,
        limiter: RateLimiter,
        recorder: Recorder,
        *,
        reconcile: ReconcileConfig = DEFAULT_RECONCILE,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        core = client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        # ServiceAccounts are patched from what is cached: only managedFields go; Secrets
        # also lose their token (cached_secret). Namespaces: their labels and deletion.
        self.serviceaccounts = Informer(
            "serviceaccounts",
            core.list_service_account_for_all_namespaces,
            transform=strip_managed_fields,
        )
        self.secrets = Informer(
            "managed-secrets",
            core.list_secret_for_all_namespaces,
            label_selector=MANAGED_SECRET_SELECTOR,
            transform=cached_secret,
        )
        self.namespaces = Informer(
            "namespaces", core.list_namespace, transform=projection({"metadata": {"labels": True}})
        )
        self.configs = Informer(
            "registry-config",
            functools.partial(
                custom.list_cluster_custom_object, OPERATOR_GROUP, OPERATOR_VERSION, CONFIGS
            ),
            field_selector="metadata.name=cluster",
            missing_ok=True,
            transform=strip_managed_fields,
        )
        self.queue = WorkQueue(name="pull-secrets")
        self._api = PullSecretApi(api, limiter)
        self._namespace = namespace  # where the signing-key probe asks for its token
        self._now = now
        self._audiences = config.token_audiences
        # A new signing key makes every managed token stale: judge every SA again.
        self.signing_key = SigningKey(on_change=lambda: self._enqueue_all(None))
        self.reconciler = PullSecretReconciler(
            api=self._api,
            serviceaccounts=self.serviceaccounts,
            secrets=self.secrets,
            namespaces=self.namespaces,
            registry_configs=self.configs,
            recorder=recorder,
            config=config,
            signing_key=self.signing_key,
        )
        self.runner = Runner(
            "pull-secrets",
            self.queue,
            self.reconciler.reconcile,
            workers=reconcile.reconcile_workers,
        )
        self._resync_seconds = reconcile.resync_seconds
        self.serviceaccounts.add_handler(self._on_serviceaccount)
        self.secrets.add_handler(self._on_secret)
        self.namespaces.add_handler(self._on_namespace)
        self.configs.add_handler(self._on_config)
        metrics.MANAGED_TOKEN_EXPIRY.set_function(token_expiry_reader(self.secrets))

    @property
    def informers(self) -> list[Informer]:
        return [self.serviceaccounts, self.secrets, self.namespaces, self.configs]

    # --- event handlers: map every change to the ServiceAccount keys it affects ---------

    def _on_serviceaccount(self, kind: str, obj: Obj, old: Obj | None) -> None:
        self.queue.add(object_key(obj))

    def _on_secret(self, kind: str, obj: Obj, old: Obj | None) -> None:
        sa_name = service_account_name_of(obj)
        namespace = object_namespace(obj)
        if sa_name and namespace:
            self.queue.add(f"{namespace}/{sa_name}")

    def _on_namespace(self, kind: str, obj: Obj, old: Obj | None) -> None:
        if kind == DELETED:
            return
        if old is not None and _labels(old).get(OPT_OUT_KEY) == _labels(obj).get(OPT_OUT_KEY):
            return
        self._enqueue_all(object_name(obj))

    def _on_config(self, kind: str, obj: Obj, old: Obj | None) -> None:
        if old is not None and (old.get("spec") or {}).get("routes") == (obj.get("spec") or {}).get(
            "routes"
        ):
            return
        log.info("registry Config changed: refreshing every managed pull secret")
        self._enqueue_all(None)

    def _enqueue_all(self, namespace: str | None) -> None:
        for sa in self.serviceaccounts.list(namespace):
            self.queue.add(object_key(sa))

    # --- running --------------------------------------------------------------------------

    def start_informers(self, stop: threading.Event) -> None:
        for informer in self.informers:
            informer.start(stop)

    def probe_signing_key(self) -> None:
        """Mint a short token only to learn which key signs now; a failure waits for the
        next probe (tokens minted meanwhile say it too)."""
        try:
            token = self._api.probe_token(
                self._namespace, PROBE_SERVICE_ACCOUNT, PROBE_TOKEN_SECONDS, self._audiences
            )
        except (ApiException, HTTPError, OSError, KeyError, TypeError) as err:
            log.warning("could not probe the service-account signing key: %s", err)
            return
        self.signing_key.observe(key_id_of(token), self._now())

    def _probe_signing_key_until(self, stop: threading.Event) -> None:
        while not stop.wait(KEY_PROBE_SECONDS):
            self.probe_signing_key()

    def run(self, stop: threading.Event) -> None:
        """Start workers once every cache has synced (and the signing key is known, so the
        first pass already judges each token by it), and resync everything periodically."""
        if not wait_all_synced(self.informers, stop):
            return
        log.info(
            "pull-secret controller: caches synced, %d ServiceAccounts to reconcile",
            len(self.serviceaccounts.list()),
        )
        self.probe_signing_key()
        prober = threading.Thread(
            target=self._probe_signing_key_until, args=(stop,), name="signing-key", daemon=True
        )
        prober.start()
        self._enqueue_all(None)
        self.runner.start(stop)
        while not stop.wait(self._resync_seconds):
            self._enqueue_all(None)
        self.runner.join()
        prober.join()
