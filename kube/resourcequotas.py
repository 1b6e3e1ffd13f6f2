"""ResourceQuota reads and status writes as plain dicts, each call bounded by a timeout.

The one concrete gateway behind the quota charger (serve) and the usage reconciler
(controller); they depend on Protocols of their own, so their tests pass fakes. Errors
are the client's ``ApiException``: ``Conflict`` when the resourceVersion precondition
fails, ``NotFound`` when the quota is gone (``kube.apierrors`` reads them).
"""

from __future__ import annotations

from kubernetes import client

from kube.jsonapi import JsonApi
from quota.objects import Obj, object_name, object_namespace


class ResourceQuotaClient(JsonApi):
    """``timeout`` bounds each call unless the caller passes a tighter one."""

    def __init__(self, api: client.ApiClient, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._core = client.CoreV1Api(api)

    def list(self, namespace: str, *, timeout: float | None = None) -> list[Obj]:
        """The namespace's quotas, read live (not from a cache)."""
        answer = self._call(self._core.list_namespaced_resource_quota, namespace, timeout=timeout)
        items: list[Obj] = answer.get("items") or []
        return items

    def read(self, namespace: str, name: str, *, timeout: float | None = None) -> Obj:
        return self._call(
            self._core.read_namespaced_resource_quota, name, namespace, timeout=timeout
        )

    def replace_status(self, quota: Obj, *, timeout: float | None = None) -> Obj:
        """Write ``quota``'s status, conditional on its ``metadata.resourceVersion``; the
        quota as stored comes back (the charger charges the next create against it)."""
        return self._call(
            self._core.replace_namespaced_resource_quota_status,
            object_name(quota),
            object_namespace(quota),
            quota,
            timeout=timeout,
        )
