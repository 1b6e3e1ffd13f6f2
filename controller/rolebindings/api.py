"""The calls the default-rights reconciler makes, as dicts, rate limited: RoleBindings,
and the ``builder`` ServiceAccount's create (never an update or a delete of an account).

Creating a binding of ``registry-viewer`` or ``registry-editor`` needs either their
permissions or ``bind`` on them: the controller holds ``bind`` by resourceNames
(manifests/base/rbac.yaml), never the permissions themselves.
"""

from __future__ import annotations

from typing import Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import apierrors
from kube.jsonapi import JsonApi, Limiter
from quota.objects import Obj

REQUEST_TIMEOUT: Final = 30
"""Seconds per call, as the pull-secret adapter: a slow answer is retried with backoff."""


class RoleBindingApi(JsonApi):
    def __init__(self, api: client.ApiClient, limiter: Limiter) -> None:
        super().__init__(timeout=REQUEST_TIMEOUT, limiter=limiter)
        self._rbac = client.RbacAuthorizationV1Api(api)

    def create(self, namespace: str, body: Obj) -> Obj:
        return self._call(self._rbac.create_namespaced_role_binding, namespace, body)

    def replace(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._call(self._rbac.replace_namespaced_role_binding, name, namespace, body)

    def delete(self, namespace: str, name: str, uid: str, resource_version: str) -> None:
        """Delete only the binding as we judged it: the uid and resourceVersion
        preconditions refuse one created or edited since (a Conflict, the caller's)."""
        try:
            self._call(
                self._rbac.delete_namespaced_role_binding,
                name,
                namespace,
                body={"preconditions": {"uid": uid, "resourceVersion": resource_version}},
            )
        except ApiException as err:
            if not apierrors.is_not_found(err):
                raise


class BuilderAccountApi(JsonApi):
    def __init__(self, api: client.ApiClient, limiter: Limiter) -> None:
        super().__init__(timeout=REQUEST_TIMEOUT, limiter=limiter)
        self._core = client.CoreV1Api(api)

    def create(self, namespace: str, body: Obj) -> Obj:
        return self._call(self._core.create_namespaced_service_account, namespace, body)
