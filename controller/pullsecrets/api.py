"""The Kubernetes calls the pull-secret reconciler makes, as dicts, rate limited.

Every call goes through one client-side token bucket, so a backlog of thousands of
ServiceAccounts never floods the API server.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import apierrors
from kube.jsonapi import JsonApi, Limiter
from quota.objects import Obj
from quota.pullsecrets.names import MANAGED_SECRET_SELECTOR
from quota.timestamps import parse_rfc3339

REQUEST_TIMEOUT: Final = 30
"""Seconds per call: a slow answer is retried by the work queue, with backoff."""


class PullSecretApi(JsonApi):
    def __init__(self, api: client.ApiClient, limiter: Limiter) -> None:
        super().__init__(timeout=REQUEST_TIMEOUT, limiter=limiter)
        self._core = client.CoreV1Api(api)

    def read_secret(self, namespace: str, name: str) -> Obj | None:
        return self._read(self._core.read_namespaced_secret, name, namespace)

    def read_serviceaccount(self, namespace: str, name: str) -> Obj | None:
        return self._read(self._core.read_namespaced_service_account, name, namespace)

    def list_managed_secrets(self, namespace: str) -> list[Obj]:
        """The namespace's managed Secrets as the API server has them now (not a cache)."""
        items: list[Obj] = self._call(
            self._core.list_namespaced_secret, namespace, label_selector=MANAGED_SECRET_SELECTOR
        )["items"]
        return items

    def create_secret(self, namespace: str, body: Obj) -> Obj:
        return self._call(self._core.create_namespaced_secret, namespace, body)

    def replace_secret(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._call(self._core.replace_namespaced_secret, name, namespace, body)

    def delete_secret(self, namespace: str, name: str, uid: str) -> None:
        """Delete only the Secret with this uid: never one created since we looked."""
        try:
            self._call(
                self._core.delete_namespaced_secret,
                name,
                namespace,
                body={"preconditions": {"uid": uid}, "propagationPolicy": "Background"},
            )
        except ApiException as err:
            # Gone already, or the uid precondition failed (a new Secret under the name):
            # either way the Secret we meant is not there to delete.
            if not (apierrors.is_not_found(err) or apierrors.is_conflict(err)):
                raise

    def request_token(
        self,
        namespace: str,
        sa_name: str,
        secret: Obj,
        lifetime_seconds: int,
        audiences: tuple[str, ...],
    ) -> tuple[str, dt.datetime]:
        """A token for the SA bound to ``secret``: deleting the Secret invalidates it."""
        meta = secret["metadata"]
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": list(audiences),
                "expirationSeconds": lifetime_seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        status = self._call(
            self._core.create_namespaced_service_account_token, sa_name, namespace, body
        )["status"]
        expires = parse_rfc3339(status.get("expirationTimestamp"))
        if expires is None:
            raise ValueError("TokenRequest answered without a valid expirationTimestamp")
        return status["token"], expires

    def probe_token(
        self, namespace: str, sa_name: str, lifetime_seconds: int, audiences: tuple[str, ...]
    ) -> str:
        """A short unbound token for ``sa_name``, only to read which key signed it."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": list(audiences), "expirationSeconds": lifetime_seconds},
        }
        status = self._call(
            self._core.create_namespaced_service_account_token, sa_name, namespace, body
        )["status"]
        token: str = status["token"]
        return token

    def patch_serviceaccount(self, namespace: str, name: str, ops: list[Obj]) -> Obj:
        return self._call(self._core.patch_namespaced_service_account, name, namespace, ops)
