"""The webhook configurations this service registers for itself.

``desired_configurations`` is pure (easy to test, and the same objects the manifests
describe); ``register`` writes them with create-or-replace so a restart converges.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Final

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import apierrors
from quota.names import IMAGE_GROUP, IMAGESTREAMS
from webhook.admission.endpoints import (
    MUTATE_SERVICEACCOUNTS,
    VALIDATE_IMAGESTREAMS,
    VALIDATE_POLICIES,
)

log = logging.getLogger(__name__)

ADMISSIONREGISTRATION = "admissionregistration.k8s.io/v1"
MANAGED_BY = "registry-v2-policy"

# CEL over the admitted object: call /validate/policies only for objects that name an
# alauda.io type or resource, so a webhook outage never blocks native quota edits.
_LIMIT_FIELDS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")


def _names_alauda(expr: str) -> str:
    return f"{expr}.exists(k, k.startsWith('alauda.io/'))"


POLICY_MATCH_EXPRESSION = (
    "(object.kind == 'ResourceQuota' && has(object.spec) && has(object.spec.hard) && "
    + _names_alauda("object.spec.hard")
    + ") || (object.kind == 'LimitRange' && has(object.spec) && has(object.spec.limits) && "
    + "object.spec.limits.exists(l, l.type.startsWith('alauda.io/') || "
    + " || ".join(f"(has(l.{f}) && {_names_alauda('l.' + f)})" for f in _LIMIT_FIELDS)
    + "))"
)


def client_config(
    path: str,
    ca_bundle: bytes,
    *,
    url: str | None,
    service_namespace: str,
    service_name: str,
    service_port: int,
) -> dict[str, Any]:
    """``url`` client config when a base URL is given (dev), else a Service reference.

    Without a CA the caBundle is left out, for whatever injects it later (cert-manager's
    cainjector, an install script).
    """
    config: dict[str, Any] = {}
    if ca_bundle:
        config["caBundle"] = base64.b64encode(ca_bundle).decode("ascii")
    if url:
        config["url"] = url.rstrip("/") + path
    else:
        config["service"] = {
            "namespace": service_namespace,
            "name": service_name,
            "port": service_port,
            "path": path,
        }
    return config


def _excluded(namespaces: list[str]) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": namespaces,
            }
        ]
    }


def _rule(group: str, resources: list[str]) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": ["v1"],
        "resources": resources,
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    }


TIMEOUT_SECONDS: Final = {
    # The API server waits this long for an answer, then applies the failure policy.
    # A ServiceAccount write is cheap and fails open; a policy check is pure.
    MUTATE_SERVICEACCOUNTS: 5,
    # An ImageStream create may charge quota: live reads and conflict retries.
    VALIDATE_IMAGESTREAMS: 10,
    VALIDATE_POLICIES: 5,
}


def desired_configurations(
    *,
    name: str,
    ca_bundle: bytes,
    excluded_namespaces: list[str],
    url: str | None = None,
    service_namespace: str = "",
    service_name: str = "",
    service_port: int = 443,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The MutatingWebhookConfiguration and ValidatingWebhookConfiguration, as dicts."""

    def cc(path: str) -> dict[str, Any]:
        return client_config(
            path,
            ca_bundle,
            url=url,
            service_namespace=service_namespace,
            service_name=service_name,
            service_port=service_port,
        )

    common = {
        "admissionReviewVersions": ["v1"],
        "sideEffects": "NoneOnDryRun",
        "matchPolicy": "Equivalent",
        "namespaceSelector": _excluded(excluded_namespaces),
    }
    labels = {"app.kubernetes.io/managed-by": MANAGED_BY}
    mutating = {
        "apiVersion": ADMISSIONREGISTRATION,
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": labels},
        "webhooks": [
            {
                "name": "serviceaccounts.webhook.image.alauda.io",
                "clientConfig": cc(MUTATE_SERVICEACCOUNTS),
                "rules": [_rule("", ["serviceaccounts"])],
                # The reconciler heals whatever an outage lets through.
                "failurePolicy": "Ignore",
                "reinvocationPolicy": "IfNeeded",
                "timeoutSeconds": TIMEOUT_SECONDS[MUTATE_SERVICEACCOUNTS],
                **common,
            }
        ],
    }
    validating = {
        "apiVersion": ADMISSIONREGISTRATION,
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": labels},
        "webhooks": [
            {
                "name": "imagestreams.webhook.image.alauda.io",
                "clientConfig": cc(VALIDATE_IMAGESTREAMS),
                "rules": [_rule(IMAGE_GROUP, [IMAGESTREAMS, f"{IMAGESTREAMS}/status"])],
                "failurePolicy": "Fail",
                "timeoutSeconds": TIMEOUT_SECONDS[VALIDATE_IMAGESTREAMS],
                **common,
            },
            {
                "name": "policies.webhook.image.alauda.io",
                "clientConfig": cc(VALIDATE_POLICIES),
                "rules": [_rule("", ["limitranges", "resourcequotas"])],
                "failurePolicy": "Fail",
                "timeoutSeconds": TIMEOUT_SECONDS[VALIDATE_POLICIES],
                "matchConditions": [
                    {"name": "names-alauda-io-resources", "expression": POLICY_MATCH_EXPRESSION}
                ],
                **common,
            },
        ],
    }
    return mutating, validating


def _apply(read: Any, create: Any, replace: Any, body: dict[str, Any], attempts: int = 5) -> None:
    name = body["metadata"]["name"]
    for _ in range(attempts):
        try:
            current = read(name)
        except ApiException as err:
            if not apierrors.is_not_found(err):
                raise
            try:
                create(body)
                return
            except ApiException as create_err:
                if apierrors.is_already_exists(create_err):  # created meanwhile: read it
                    continue
                raise
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        try:
            replace(name, body)
            return
        except ApiException as err:
            if apierrors.is_conflict(err):  # written meanwhile: read again
                continue
            raise
    raise RuntimeError(f"could not write {body['kind']} {name}: too many conflicts")


def register(api: client.ApiClient, mutating: dict[str, Any], validating: dict[str, Any]) -> None:
    """Create or replace both configurations, retrying on write conflicts."""
    admission = client.AdmissionregistrationV1Api(api)
    _apply(
        admission.read_mutating_webhook_configuration,
        admission.create_mutating_webhook_configuration,
        admission.replace_mutating_webhook_configuration,
        mutating,
    )
    _apply(
        admission.read_validating_webhook_configuration,
        admission.create_validating_webhook_configuration,
        admission.replace_validating_webhook_configuration,
        validating,
    )
    log.info("registered webhook configurations %s", mutating["metadata"]["name"])


MANIFEST_HEADER: Final = """\
# The two webhook configurations, as `image-registry-webhook webhook-configurations`
# prints them (a unit test keeps this file equal to its output). The serving pods have no
# right to write admission configuration, so these are installed with the manifests.
# caBundle: the controller's certificate manager fills it (server-side apply of those
# fields only, field manager registry-v2-cert-manager), or cert-manager's cainjector does.
"""


class _NoAliases(yaml.SafeDumper):
    """Repeated sub-objects written out in full: anchors would puzzle a reader of YAML."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_manifest(mutating: dict[str, Any], validating: dict[str, Any]) -> str:
    """Both configurations as one YAML file for ``kubectl apply -f``."""
    documents = yaml.dump_all([mutating, validating], Dumper=_NoAliases, sort_keys=False)
    return MANIFEST_HEADER + documents
