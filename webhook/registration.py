"""The webhook configurations this service registers for itself.

``desired_configurations`` is pure (easy to test, and the same objects the manifests
describe); ``register`` writes them with create-or-replace so a restart converges.

The cheapest review is the one never sent: the API server itself skips a namespace that
is excluded (``--excluded-namespace``) or carries ``EXEMPT_LABEL``, and, by
``matchConditions`` evaluated in the API server, an UPDATE our answer could not change:
an ImageStream write that leaves every tag list the rules read as it was, and a
ServiceAccount write where the account already carries what the mutation would add.
Each expression guards every field it reads with ``has()``: an evaluation error would
apply the failure policy (``Fail`` refuses the write), never skip the review.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Final

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import apierrors
from quota.names import IMAGE_GROUP, IMAGESTREAMS, MAX_NAME_LENGTH
from quota.pullsecrets.names import ANNOTATION_PULL_SECRET_REF, SECRET_NAME_SUFFIX
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


EXEMPT_LABEL: Final = "image.alauda.io/exempt"
"""Namespace label: with the value ``EXEMPT_VALUE`` the API server calls none of our
webhooks for the namespace, as for one named by ``--excluded-namespace`` (README:
"Exempt namespaces"). Setting, changing or removing it takes a right of its own, checked
by the API server (``webhook.exemption``): creating a namespace is not enough."""
EXEMPT_VALUE: Final = "true"

# The rules read these lists of an ImageStream and nothing else of what a write changes
# (quota.measure.stream_usage: spec.tags[*].name, status.tags[*].tag and their items'
# images); the stream's name and namespace never change on an UPDATE.
STREAM_LISTS_READ: Final = (("spec", "tags"), ("status", "tags"))


def _list_changed(section: str, field: str) -> str:
    """CEL: ``<section>.<field>`` differs between ``oldObject`` and ``object``, present or
    absent; ``&&`` stops before a ``has()`` of a field under an absent section."""
    new, old = f"object.{section}", f"oldObject.{section}"
    new_has = f"(has({new}) && has({new}.{field}))"
    old_has = f"(has({old}) && has({old}.{field}))"
    return f"{new_has} != {old_has} || ({new_has} && {new}.{field} != {old}.{field})"


STREAM_MATCH_EXPRESSION: Final = "request.operation != 'UPDATE' || " + " || ".join(
    _list_changed(section, field) for section, field in STREAM_LISTS_READ
)
"""Call /validate/imagestreams for a create, and for an update that changes a tag list:
one that does not (labels, annotations, finalizers, managedFields, a no-op status write)
keeps every count and adds no image, which check_stream_write always allows.

The front door's own status writes (a push's tag record) are reviewed like any other:
its in-process verdict is judged from its caches before the write, and its conflict retry
writes again over a fresh read without judging again, so this webhook is what stops two
racing pushes from both passing a limit (frontdoor/pushes.py, step 5)."""

_MAX_PLAIN_SA_NAME: Final = MAX_NAME_LENGTH - len(SECRET_NAME_SUFFIX)
_REF = f"object.metadata.annotations['{ANNOTATION_PULL_SECRET_REF}']"
SERVICEACCOUNT_MATCH_EXPRESSION: Final = (
    "request.operation != 'UPDATE' || !("
    f"has(object.metadata.name) && size(object.metadata.name) <= {_MAX_PLAIN_SA_NAME} && "
    f"has(object.metadata.annotations) && "
    f"'{ANNOTATION_PULL_SECRET_REF}' in object.metadata.annotations && "
    f"{_REF} == object.metadata.name + '{SECRET_NAME_SUFFIX}' && "
    "has(object.imagePullSecrets) && "
    f"object.imagePullSecrets.filter(e, has(e.name) && e.name == {_REF}).size() == 1)"
)
"""Call /mutate/serviceaccounts unless an UPDATE leaves the account carrying its plain
``<sa>-dockercfg`` (quota.pullsecrets.names.secret_name_for, for names short enough to
need no hash) once in ``imagePullSecrets`` and in the ref annotation: then the mutation
adds nothing (add_pull_secret_patch returns []), whoever owns the Secret. An opt-out is
still honoured: the reconciler's removal takes the annotation away, so its write is
reviewed, and the webhook adds nothing to an opted-out account. A fallback name, a
duplicate entry or a missing annotation is reviewed as before."""


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


def namespace_selector(excluded_namespaces: list[str]) -> dict[str, Any]:
    """Every namespace but the excluded ones (by the name label the API server sets on
    each namespace) and those labelled exempt (``NotIn`` also matches an unlabelled one)."""
    return {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": excluded_namespaces,
            },
            {"key": EXEMPT_LABEL, "operator": "NotIn", "values": [EXEMPT_VALUE]},
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
        "namespaceSelector": namespace_selector(excluded_namespaces),
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
                "matchConditions": [
                    {
                        "name": "may-add-the-pull-secret",
                        "expression": SERVICEACCOUNT_MATCH_EXPRESSION,
                    }
                ],
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
                "matchConditions": [
                    {"name": "changes-what-the-rules-read", "expression": STREAM_MATCH_EXPRESSION}
                ],
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


def create_or_replace(
    read: Any, create: Any, replace: Any, body: dict[str, Any], attempts: int = 5
) -> None:
    """Write ``body`` whether or not it exists, retrying on write conflicts, so a restart
    converges (``read``, ``create`` and ``replace`` are one kind's client methods)."""
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
    create_or_replace(
        admission.read_mutating_webhook_configuration,
        admission.create_mutating_webhook_configuration,
        admission.replace_mutating_webhook_configuration,
        mutating,
    )
    create_or_replace(
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
