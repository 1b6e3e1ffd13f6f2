"""The Kubernetes calls of the certificate manager, as dicts, rate limited."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.certificates.reconciler import FIELD_MANAGER
from kube import apierrors
from quota.objects import Obj

REQUEST_TIMEOUT = 30
APPLY_PATCH = "application/apply-patch+yaml"
"""Server-side apply; JSON is YAML, so the client's JSON body is sent as is."""
ADMISSIONREGISTRATION = "admissionregistration.k8s.io/v1"


class Limiter(Protocol):
    def acquire(self) -> None: ...


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


class CertificateApi:
    def __init__(self, api: client.ApiClient, limiter: Limiter) -> None:
        self._core = client.CoreV1Api(api)
        admission = client.AdmissionregistrationV1Api(api)
        self._read = {
            "MutatingWebhookConfiguration": admission.read_mutating_webhook_configuration,
            "ValidatingWebhookConfiguration": admission.read_validating_webhook_configuration,
        }
        self._patch = {
            "MutatingWebhookConfiguration": admission.patch_mutating_webhook_configuration,
            "ValidatingWebhookConfiguration": admission.patch_validating_webhook_configuration,
        }
        self._limiter = limiter

    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        self._limiter.acquire()
        response = func(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        data: Obj = json.loads(response.data)
        return data

    def _or_none(self, func: Callable[..., Any], *args: Any) -> Obj | None:
        try:
            return self._call(func, *args)
        except ApiException as err:
            if apierrors.is_not_found(err):
                return None
            raise

    def read_secret(self, namespace: str, name: str) -> Obj | None:
        return self._or_none(self._core.read_namespaced_secret, name, namespace)

    def create_secret(self, namespace: str, body: Obj) -> Obj:
        return self._call(self._core.create_namespaced_secret, namespace, body)

    def replace_secret(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._call(self._core.replace_namespaced_secret, name, namespace, body)

    def read_configuration(self, kind: str, name: str) -> Obj | None:
        return self._or_none(self._read[kind], name)

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
