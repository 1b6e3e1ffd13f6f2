"""The calls of the image-pruner reconciler, as dicts, rate limited: the ImagePruner's
create and status, the CronJob's create and replace.

The controller may create ImagePruners (RBAC cannot name the object of a create; the CRD
admits only ``cluster``) and write their status, and create and update CronJobs in its own
namespace only (manifests/base/image-pruner.yaml). It never deletes the CronJob: the
garbage collector does, through its ownerReference.
"""

from __future__ import annotations

from typing import Final

from kubernetes import client

from kube.jsonapi import JsonApi, Limiter
from quota.imagepruner.cronjob import IMAGEPRUNERS
from quota.names import OPERATOR_GROUP, OPERATOR_VERSION
from quota.objects import Obj

REQUEST_TIMEOUT: Final = 30
"""Seconds per call, as the other adapters: a slow answer is retried with backoff."""


class PrunerApi(JsonApi):
    def __init__(self, api: client.ApiClient, limiter: Limiter) -> None:
        super().__init__(timeout=REQUEST_TIMEOUT, limiter=limiter)
        self._custom = client.CustomObjectsApi(api)
        self._batch = client.BatchV1Api(api)

    def create_pruner(self, body: Obj) -> Obj:
        return self._call(
            self._custom.create_cluster_custom_object,
            OPERATOR_GROUP,
            OPERATOR_VERSION,
            IMAGEPRUNERS,
            body,
        )

    def replace_pruner_status(self, name: str, body: Obj) -> Obj:
        return self._call(
            self._custom.replace_cluster_custom_object_status,
            OPERATOR_GROUP,
            OPERATOR_VERSION,
            IMAGEPRUNERS,
            name,
            body,
        )

    def create_cronjob(self, namespace: str, body: Obj) -> Obj:
        return self._call(self._batch.create_namespaced_cron_job, namespace, body)

    def replace_cronjob(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._call(self._batch.replace_namespaced_cron_job, name, namespace, body)
