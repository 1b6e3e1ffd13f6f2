"""Keep one namespace's default registry rights: its two RoleBindings
(``quota.rolebindings`` decides) and the ``builder`` ServiceAccount the builders' binding
names (``quota.builderaccount`` decides).

Level-based: each call judges the fixed names from the caches and converges them, so a
restart, a replayed event or a retry repeats only what is already done, and no sequence
of events makes a second binding or account. Every write is conditional on what was
judged (a create fails when the name was taken meanwhile, an update or delete carries
the resourceVersion read), so a user's edit racing the reconcile is never overwritten: the
write fails, the key is retried, and the next judgement sees the edit and leaves it. The
account is only ever created: once it exists, whoever made it, it is never written again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from kube import apierrors
from kube.requeue import Requeue
from quota.builderaccount import AccountAction, desired_account, plan_account
from quota.objects import Obj, mapping, metadata
from quota.rolebindings import BINDING_NAMES, BUILDER_ACCOUNT, Action, opted_out, plan

log = logging.getLogger(__name__)


class RoleBindingCalls(Protocol):
    """The API calls the reconciler makes (``api.RoleBindingApi`` makes them)."""

    def create(self, namespace: str, body: Obj) -> Obj: ...
    def replace(self, namespace: str, name: str, body: Obj) -> Obj: ...
    def delete(self, namespace: str, name: str, uid: str, resource_version: str) -> None: ...


class AccountCalls(Protocol):
    """The one ServiceAccount call (``api.BuilderAccountApi`` makes it)."""

    def create(self, namespace: str, body: Obj) -> Obj: ...


class Cache(Protocol):
    def get(self, key: str) -> Obj | None: ...


class RoleBindingReconciler:
    def __init__(
        self,
        *,
        api: RoleBindingCalls,
        namespaces: Cache,
        rolebindings: Cache,
        accounts: AccountCalls,
        serviceaccounts: Cache,
        excluded_namespaces: frozenset[str],
    ) -> None:
        self._api = api
        self._namespaces = namespaces
        self._bindings = rolebindings
        self._accounts_api = accounts
        self._accounts = serviceaccounts
        self._excluded = excluded_namespaces

    def managed(self, namespace: str) -> bool:
        """The pull-secret reconciler's namespaces: all but the excluded ones."""
        return namespace not in self._excluded

    def reconcile(self, namespace: str) -> float | None:
        """Converge the builder account and both bindings of ``namespace``; nothing to do
        later (no clock)."""
        if not self.managed(namespace):
            return None
        ns = self._namespaces.get(namespace)
        if ns is None or metadata(ns).get("deletionTimestamp"):
            return None  # going away: its bindings go with it
        opt_out = opted_out(mapping(metadata(ns).get("labels")))
        for name in BINDING_NAMES:
            existing = self._bindings.get(f"{namespace}/{name}")
            self._converge(namespace, name, existing, opt_out=opt_out)
        # After the bindings: a controller whose RBAC predates the account (no create on
        # serviceaccounts) still keeps the rights, and retries the account with backoff.
        self._ensure_builder(namespace, opt_out=opt_out)
        return None

    def _ensure_builder(self, namespace: str, *, opt_out: bool) -> None:
        existing = self._accounts.get(f"{namespace}/{BUILDER_ACCOUNT}")
        if plan_account(existing, opt_out=opt_out) is not AccountAction.CREATE:
            return
        try:
            self._accounts_api.create(namespace, desired_account(namespace))
        except ApiException as err:
            # Made meanwhile (a user, or our own create the cache has not shown yet): it
            # exists, which is all we want, and whoever made it owns it. Kubernetes' own
            # ServiceAccounts controller answers both errors alike.
            if apierrors.is_already_exists(err) or apierrors.is_namespace_terminating(err):
                return
            raise
        log.info("serviceaccount %s/%s: created", namespace, BUILDER_ACCOUNT)

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
