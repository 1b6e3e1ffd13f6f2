"""Keep one namespace's default registry RoleBindings (``quota.rolebindings`` decides).

Level-based: each call judges the two names from the caches and converges them, so a
restart, a replayed event or a retry repeats only what is already done. The names are
fixed, so no sequence of events makes a second binding. Every write is conditional on what
was judged (a create fails when the name was taken meanwhile, an update or delete carries
the resourceVersion read), so a user's edit racing the reconcile is never overwritten: the
write fails, the key is retried, and the next judgement sees the edit and leaves it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from kube import apierrors
from kube.requeue import Requeue
from quota.objects import Obj, mapping, metadata
from quota.rolebindings import BINDING_NAMES, Action, opted_out, plan

log = logging.getLogger(__name__)


class RoleBindingCalls(Protocol):
    """The API calls the reconciler makes (``api.RoleBindingApi`` makes them)."""

    def create(self, namespace: str, body: Obj) -> Obj: ...
    def replace(self, namespace: str, name: str, body: Obj) -> Obj: ...
    def delete(self, namespace: str, name: str, uid: str, resource_version: str) -> None: ...


class Cache(Protocol):
    def get(self, key: str) -> Obj | None: ...


class RoleBindingReconciler:
    def __init__(
        self,
        *,
        api: RoleBindingCalls,
        namespaces: Cache,
        rolebindings: Cache,
        excluded_namespaces: frozenset[str],
    ) -> None:
        self._api = api
        self._namespaces = namespaces
        self._bindings = rolebindings
        self._excluded = excluded_namespaces

    def managed(self, namespace: str) -> bool:
        """The pull-secret reconciler's namespaces: all but the excluded ones."""
        return namespace not in self._excluded

    def reconcile(self, namespace: str) -> float | None:
        """Converge both bindings of ``namespace``; nothing to do later (no clock)."""
        if not self.managed(namespace):
            return None
        ns = self._namespaces.get(namespace)
        if ns is None or metadata(ns).get("deletionTimestamp"):
            return None  # going away: its bindings go with it
        opt_out = opted_out(mapping(metadata(ns).get("labels")))
        for name in BINDING_NAMES:
            existing = self._bindings.get(f"{namespace}/{name}")
            self._converge(namespace, name, existing, opt_out=opt_out)
        return None

    def _converge(
        self, namespace: str, name: str, existing: Mapping[str, Any] | None, *, opt_out: bool
    ) -> None:
        step = plan(namespace, name, existing, opt_out=opt_out)
        if step.action in (Action.NONE, Action.LEAVE_FOREIGN, Action.LEAVE_EDITED):
            return
        try:
            if step.action is Action.CREATE:
                self._api.create(namespace, step.desired)
            elif step.action is Action.UPDATE:
                assert existing is not None
                body = dict(step.desired)
                body["metadata"] = {
                    **step.desired["metadata"],
                    "resourceVersion": metadata(existing).get("resourceVersion", ""),
                }
                self._api.replace(namespace, name, body)
            else:  # DELETE, or RECREATE: roleRef is immutable, so delete; the retry creates
                assert existing is not None
                meta = metadata(existing)
                self._api.delete(
                    namespace, name, meta.get("uid", ""), meta.get("resourceVersion", "")
                )
        except ApiException as err:
            if apierrors.is_namespace_terminating(err):
                return
            # Taken, edited or deleted since the cache showed it: judge again once the
            # cache has caught up.
            if (
                apierrors.is_already_exists(err)
                or apierrors.is_conflict(err)
                or apierrors.is_not_found(err)
            ):
                raise Requeue(f"rolebinding {namespace}/{name} changed meanwhile") from None
            raise
        log.info("rolebinding %s/%s: %s (%s)", namespace, name, step.action.name, step.action)
        if step.action is Action.RECREATE:
            raise Requeue(f"rolebinding {namespace}/{name} deleted to change its roleRef")
