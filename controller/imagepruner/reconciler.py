"""Keep the ``image-pruner`` CronJob to ``imagepruners/cluster`` (``quota.imagepruner``
decides) and report the last run in the ImagePruner's status.

Level-based, one key: each call judges the ImagePruner, the CronJob and its Jobs from the
caches and converges, so a restart, a replayed event or a retry repeats only what is
already done. A replace carries the resourceVersion read and a create fails on a name
taken meanwhile: a write that lost a race is retried once the caches have caught up. A
CronJob the API server refuses (a schedule our schema let through but the CronJob's
validation did not) is reported in the status, not retried: the next spec change is.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from kubernetes.client.exceptions import ApiException

from kube import apierrors
from kube.requeue import Requeue
from quota.imagepruner.cronjob import CRONJOB_NAME, PRUNER_NAME, Action, PrunerSettings, plan
from quota.imagepruner.status import desired_status
from quota.objects import Obj, mapping, metadata

log = logging.getLogger(__name__)


class PrunerCalls(Protocol):
    """The API calls the reconciler makes (``api.PrunerApi`` makes them)."""

    def create_pruner(self, body: Obj) -> Obj: ...
    def replace_pruner_status(self, name: str, body: Obj) -> Obj: ...
    def create_cronjob(self, namespace: str, body: Obj) -> Obj: ...
    def replace_cronjob(self, namespace: str, name: str, body: Obj) -> Obj: ...


class Cache(Protocol):
    def get(self, key: str) -> Obj | None: ...
    def list(self, namespace: str | None = None) -> list[Obj]: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _refusal(err: ApiException) -> str:
    """The API server's words for a refused write (they name the field)."""
    message = apierrors.status_of(err).get("message")
    return str(message) if message else f"{err.status} {err.reason}"


class ImagePrunerReconciler:
    def __init__(
        self,
        *,
        api: PrunerCalls,
        settings: PrunerSettings,
        pruners: Cache,
        cronjobs: Cache,
        jobs: Cache,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._api = api
        self._settings = settings
        self._pruners = pruners
        self._cronjobs = cronjobs
        self._jobs = jobs
        self._now = now
        self._lock = threading.Lock()
        self._warned_missing_crd = False

    key = PRUNER_NAME

    def reconcile(self, key: str) -> float | None:
        """Converge the CronJob, then the status; nothing to do later (no clock)."""
        namespace = self._settings.namespace
        pruner = self._pruners.get(PRUNER_NAME)
        cronjob = self._cronjobs.get(f"{namespace}/{CRONJOB_NAME}")
        step = plan(pruner, cronjob, self._settings)
        if step.action is Action.CREATE_PRUNER:
            assert step.desired is not None
            self._create_default(step.desired)
            return None
        if pruner is None or step.action in (Action.WAIT_DELETION, Action.WAIT_COLLECTION):
            return None  # the CronJob's deletion brings the key back
        render_error = None
        if step.action in (Action.CREATE, Action.UPDATE):
            assert step.desired is not None
            try:
                cronjob = self._write_cronjob(step.action, step.desired, cronjob)
            except ApiException as err:
                if not (apierrors.is_invalid(err) or apierrors.is_forbidden(err)):
                    raise
                render_error = _refusal(err)
                log.warning("cronjob %s/%s refused: %s", namespace, CRONJOB_NAME, render_error)
            else:
                log.info(
                    "cronjob %s/%s: %s (%s)", namespace, CRONJOB_NAME, step.action.name, step.action
                )
        self._report(pruner, cronjob, render_error)
        return None

    def _create_default(self, desired: Obj) -> None:
        try:
            self._api.create_pruner(desired)
        except ApiException as err:
            if apierrors.is_already_exists(err):
                raise Requeue(f"imagepruner {PRUNER_NAME} created meanwhile") from None
            if apierrors.is_not_found(err):  # the CRD is not installed: the resync retries
                with self._lock:
                    warn, self._warned_missing_crd = not self._warned_missing_crd, True
                if warn:
                    log.warning("imagepruners are not served (no CRD): nothing is pruned")
                return
            raise
        log.info("imagepruner %s: created with the defaults (none existed)", PRUNER_NAME)

    def _write_cronjob(self, action: Action, desired: Obj, existing: Obj | None) -> Obj:
        namespace = self._settings.namespace
        try:
            if action is Action.CREATE:
                return self._api.create_cronjob(namespace, desired)
            assert existing is not None
            body = dict(desired)
            body["metadata"] = {
                **desired["metadata"],
                "resourceVersion": metadata(existing).get("resourceVersion", ""),
            }
            return self._api.replace_cronjob(namespace, CRONJOB_NAME, body)
        except ApiException as err:
            # Taken, changed or deleted since the cache showed it: judge again once the
            # cache has caught up.
            if (
                apierrors.is_already_exists(err)
                or apierrors.is_conflict(err)
                or apierrors.is_not_found(err)
            ):
                raise Requeue(f"cronjob {namespace}/{CRONJOB_NAME} changed meanwhile") from None
            raise

    def _report(self, pruner: Obj, cronjob: Obj | None, render_error: str | None) -> None:
        jobs = self._jobs.list(self._settings.namespace)
        status = desired_status(pruner, cronjob, jobs, render_error=render_error, now=self._now())
        if status == mapping(pruner.get("status")):
            return
        body = {
            "apiVersion": pruner.get("apiVersion"),
            "kind": pruner.get("kind"),
            "metadata": {
                "name": PRUNER_NAME,
                "resourceVersion": metadata(pruner).get("resourceVersion", ""),
            },
            "spec": pruner.get("spec"),
            "status": status,
        }
        try:
            self._api.replace_pruner_status(PRUNER_NAME, body)
        except ApiException as err:
            if apierrors.is_conflict(err) or apierrors.is_not_found(err):
                raise Requeue(f"imagepruner {PRUNER_NAME} changed meanwhile") from None
            raise
