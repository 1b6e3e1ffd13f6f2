"""Keep the ConfigMap ``image-registry-certificates`` (``quota.registrycerts`` decides).

Level-based, one key: each call judges the front door's Secret, the hostnames the pull
secrets name and the ConfigMap from the caches and converges the ConfigMap, so a restart,
a replayed event or a retry repeats only what is already done. An update carries the
resourceVersion read, a create fails on a name taken meanwhile: a write that lost a race
is retried once the caches have caught up, never forced.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from kubernetes.client.exceptions import ApiException

from kube import apierrors
from kube.events import Recorder, reference
from kube.requeue import Requeue
from quota.objects import Obj, metadata
from quota.registrycerts import CONFIGMAP_NAME, FRONTDOOR_TLS_SECRET, Action, Reason, plan

log = logging.getLogger(__name__)

NOT_PUBLISHED_REASON = "RegistryCANotPublished"
"""The Warning Event on the front door's Secret when it holds no usable ``ca.crt``."""


class ConfigMapCalls(Protocol):
    """The API calls the reconciler makes (``api.ConfigMapApi`` makes them)."""

    def create(self, namespace: str, body: Obj) -> Obj: ...
    def replace(self, namespace: str, name: str, body: Obj) -> Obj: ...


class Cache(Protocol):
    def get(self, key: str) -> Obj | None: ...


class RegistryCertsReconciler:
    def __init__(
        self,
        *,
        api: ConfigMapCalls,
        namespace: str,
        node_ca_namespace: str,
        secrets: Cache,
        configmaps: Cache,
        hostnames: Callable[[], list[str]],
        recorder: Recorder,
    ) -> None:
        self._api = api
        self._namespace = namespace  # the front door's Secret's
        self._target = node_ca_namespace  # the ConfigMap's
        self._secrets = secrets
        self._configmaps = configmaps
        self._hostnames = hostnames
        self._recorder = recorder
        self._lock = threading.Lock()
        self._last_reason: Reason | None = None  # to log a change of state once

    @property
    def key(self) -> str:
        return f"{self._target}/{CONFIGMAP_NAME}"

    def reconcile(self, key: str) -> float | None:
        """Converge the ConfigMap; nothing to do later (no clock)."""
        secret = self._secrets.get(f"{self._namespace}/{FRONTDOOR_TLS_SECRET}")
        existing = self._configmaps.get(self.key)
        step = plan(self._target, secret, self._hostnames(), existing)
        self._report(step.reason, secret, step.skipped)
        if step.action is Action.NONE:
            return None
        try:
            if step.action is Action.CREATE:
                self._api.create(self._target, step.desired)
            else:
                assert existing is not None
                body = dict(step.desired)
                body["metadata"] = {
                    **step.desired["metadata"],
                    "resourceVersion": metadata(existing).get("resourceVersion", ""),
                }
                self._api.replace(self._target, CONFIGMAP_NAME, body)
        except ApiException as err:
            # Taken, changed or deleted since the cache showed it, or the namespace is
            # not there yet: judge again, with the queue's backoff.
            if (
                apierrors.is_already_exists(err)
                or apierrors.is_conflict(err)
                or apierrors.is_not_found(err)
            ):
                raise Requeue(f"configmap {self.key} changed meanwhile") from None
            raise
        log.info(
            "configmap %s: %s, %d registry hostnames (%s)",
            self.key,
            step.action.name,
            len(step.desired["data"]),
            step.reason,
        )
        return None

    def _report(self, reason: Reason, secret: Obj | None, skipped: tuple[str, ...]) -> None:
        """Log a change of state once; a Secret without a usable CA gets a Warning Event
        (the recorder folds repeats into one Event's count)."""
        with self._lock:
            changed, self._last_reason = reason is not self._last_reason, reason
        if changed:
            level = (
                logging.INFO if reason in (Reason.PUBLISHED, Reason.NO_SECRET) else logging.WARNING
            )
            log.log(level, "registry certificates: %s", reason)
            for host in skipped:
                log.warning("registry hostname %s cannot be a ConfigMap key: not published", host)
        if secret is not None and not reason.published:
            self._recorder.record(
                reference(secret, "Secret"),
                "Warning",
                NOT_PUBLISHED_REASON,
                f"{reason}: nodes get no CA for the registry from {CONFIGMAP_NAME}",
            )
