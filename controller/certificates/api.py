"""The Kubernetes calls of the certificate manager, as dicts, rate limited."""

from __future__ import annotations

import base64
from typing import Final

from kubernetes import client

from controller.certificates.reconciler import FIELD_MANAGER
from kube.jsonapi import JsonApi, Limiter
from quota.objects import Obj

REQUEST_TIMEOUT: Final = 30
"""Seconds per call: a slow answer is retried by the work queue, with backoff."""
APPLY_PATCH = "application/apply-patch+yaml"
"""Server-side apply; JSON is YAML, so the client's JSON body is sent as is."""
ADMISSIONREGISTRATION = "admissionregistration.k8s.io/v1"


def apply_configuration(kind: str, name: str, webhooks: list[str], bundle: bytes) -> Obj:
    """The server-side apply body that sets the caBundle of each named webhook, and nothing
    else: the fields we list are the only ones our field manager owns."""
    encoded = base64.b64encode(bundle).decode("ascii")
    return {
        "apiVersion": ADMISSIONREGISTRATION,
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": [{"name": w, "clientConfig": {"caBundle": encoded}} for w in webhooks],
    }


class CertificateApi(JsonApi):
    def __init__(self, api: client.ApiClient, limiter: Limiter) -> None:
        super().__init__(timeout=REQUEST_TIMEOUT, limiter=limiter)
        self._core = client.CoreV1Api(api)
        admission = client.AdmissionregistrationV1Api(api)
        self._read_configuration = {
            "MutatingWebhookConfiguration": admission.read_mutating_webhook_configuration,
            "ValidatingWebhookConfiguration": admission.read_validating_webhook_configuration,
        }
        self._patch = {
            "MutatingWebhookConfiguration": admission.patch_mutating_webhook_configuration,
            "ValidatingWebhookConfiguration": admission.patch_validating_webhook_configuration,
        }

    def read_secret(self, namespace: str, name: str) -> Obj | None:
        return self._read(self._core.read_namespaced_secret, name, namespace)

    def create_secret(self, namespace: str, body: Obj) -> Obj:
        return self._call(self._core.create_namespaced_secret, namespace, body)

    def replace_secret(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._call(self._core.replace_namespaced_secret, name, namespace, body)

    def read_configuration(self, kind: str, name: str) -> Obj | None:
        return self._read(self._read_configuration[kind], name)

    def apply_ca_bundle(self, kind: str, name: str, webhooks: list[str], bundle: bytes) -> None:
        # force: the caBundle fields are ours even where another manager (an installer that
        # once set them, cert-manager's cainjector before a switch) held them.
        self._call(
            self._patch[kind],
            name,
            apply_configuration(kind, name, webhooks, bundle),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY_PATCH,
        )
