"""The ConfigMap calls of the registry-certificates reconciler, as dicts, rate limited.

The controller may create ConfigMaps in node-ca's namespace (RBAC cannot name the object of
a create) and update only ``image-registry-certificates``
(manifests/components/node-ca/namespace.yaml).
"""

from __future__ import annotations

from typing import Final

from kubernetes import client

from kube.jsonapi import JsonApi, Limiter
from quota.objects import Obj

REQUEST_TIMEOUT: Final = 30
"""Seconds per call, as the other adapters: a slow answer is retried with backoff."""


class ConfigMapApi(JsonApi):
    def __init__(self, api: client.ApiClient, limiter: Limiter) -> None:
        super().__init__(timeout=REQUEST_TIMEOUT, limiter=limiter)
        self._core = client.CoreV1Api(api)

    def create(self, namespace: str, body: Obj) -> Obj:
        return self._call(self._core.create_namespaced_config_map, namespace, body)

    def replace(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._call(self._core.replace_namespaced_config_map, name, namespace, body)
