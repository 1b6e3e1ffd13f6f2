"""Who may exempt a namespace from our webhooks: the API server asks RBAC.

The namespace selector (``webhook.registration``) skips every namespace labelled
``EXEMPT_LABEL``, which turns off ImageStream limits, the ``alauda.io/imagestreams`` charge
at admission, policy validation and the ServiceAccount mutation there. A Namespace's
labels are written by whoever creates it, and self-service platforms let tenants create
namespaces: unguarded, the label is a quota bypass. So a ValidatingAdmissionPolicy (GA in
Kubernetes 1.30) on namespace CREATE and UPDATE refuses any write that sets, changes or
removes the label unless the requester holds ``EXEMPTION_VERB`` on ``EXEMPTION_RESOURCE``
in ``IMAGE_GROUP``: a resource with no API that RBAC authorizes all the same (CEL's
``authorizer``). ClusterRole ``EXEMPTER_ROLE`` grants it and is bound to nobody;
cluster-admins hold it through their wildcard. The policy runs in the API server, so it
holds while our server is down; ``failurePolicy: Fail`` refuses a write it cannot judge.

``desired_objects`` is pure; ``install`` writes the objects (the local stack, as it
registers the webhook configurations); ``python -m webhook.exemption`` prints the manifest
``manifests/base/exemption-guard.yaml`` (a unit test keeps the two equal).
"""

from __future__ import annotations

from typing import Any, Final

import yaml
from kubernetes import client

from quota.names import IMAGE_GROUP
from webhook.registration import (
    ADMISSIONREGISTRATION,
    EXEMPT_LABEL,
    MANAGED_BY,
    create_or_replace,
)

EXEMPTION_RESOURCE: Final = "admissionexemptions"
"""The right to exempt a namespace, as RBAC names it: ``admissionexemptions`` in the
Image API group, a resource no API serves (RBAC authorizes it all the same)."""
EXEMPTION_VERB: Final = "update"
EXEMPTER_ROLE: Final = "registry-v2:admission-exempter"
"""The shipped ClusterRole holding that right, bound to nobody: bind it to whoever may
exempt namespaces (a ClusterRoleBinding: the check is cluster-wide, not per namespace)."""
GUARD_NAME: Final = "image-registry-exempt-label"
"""The ValidatingAdmissionPolicy and its binding."""

RBAC: Final = "rbac.authorization.k8s.io/v1"


def _labelled(obj: str) -> str:
    return f"(has({obj}.metadata.labels) && '{EXEMPT_LABEL}' in {obj}.metadata.labels)"


LABEL_CHANGES: Final = (
    f"request.operation == 'CREATE' ? {_labelled('object')} : ("
    f"{_labelled('object')} != {_labelled('oldObject')} || "
    f"({_labelled('object')} && "
    f"object.metadata.labels['{EXEMPT_LABEL}'] != oldObject.metadata.labels['{EXEMPT_LABEL}']))"
)
"""A match condition: a create that carries the label (any value), an update that adds,
removes or changes it. Every other namespace write is never judged, so no one needs the
right to edit other labels; ``&&`` stops before reading a label that is absent, and a
CREATE never reads ``oldObject`` (null there)."""

MAY_EXEMPT: Final = (
    f"authorizer.group('{IMAGE_GROUP}').resource('{EXEMPTION_RESOURCE}')"
    f".check('{EXEMPTION_VERB}').allowed()"
)
"""RBAC's answer for the requester, cluster-wide (no namespace in the check)."""

DENIAL: Final = (
    f"setting, changing or removing the namespace label {EXEMPT_LABEL} takes "
    f"'{EXEMPTION_VERB}' on {EXEMPTION_RESOURCE}.{IMAGE_GROUP} (ClusterRole {EXEMPTER_ROLE}): "
    "the label turns off image quota and limits at admission for the namespace"
)

NAMESPACE_RESOURCES: Final = ("namespaces", "namespaces/status", "namespaces/finalize")
"""Every way a Namespace's metadata is written: labels must not slip in through a
subresource."""


def _metadata(name: str) -> dict[str, Any]:
    # A fresh dict each time: a shared one would be written as a YAML alias.
    return {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGED_BY}}


def desired_objects() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The ClusterRole, the ValidatingAdmissionPolicy and its binding, as dicts."""
    role = {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": _metadata(EXEMPTER_ROLE),
        "rules": [
            {
                "apiGroups": [IMAGE_GROUP],
                "resources": [EXEMPTION_RESOURCE],
                "verbs": [EXEMPTION_VERB],
            }
        ],
    }
    policy = {
        "apiVersion": ADMISSIONREGISTRATION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": _metadata(GUARD_NAME),
        "spec": {
            # A write the policy cannot judge (an evaluation error) is refused.
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": list(NAMESPACE_RESOURCES),
                        "operations": ["CREATE", "UPDATE"],
                    }
                ]
            },
            "matchConditions": [{"name": "changes-the-exempt-label", "expression": LABEL_CHANGES}],
            "validations": [{"expression": MAY_EXEMPT, "message": DENIAL, "reason": "Forbidden"}],
        },
    }
    binding = {
        "apiVersion": ADMISSIONREGISTRATION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": _metadata(GUARD_NAME),
        "spec": {"policyName": GUARD_NAME, "validationActions": ["Deny"]},
    }
    return role, policy, binding


def install(api: client.ApiClient) -> None:
    """Create or replace the three objects (the role before the policy that names it)."""
    role, policy, binding = desired_objects()
    rbac = client.RbacAuthorizationV1Api(api)
    create_or_replace(
        rbac.read_cluster_role, rbac.create_cluster_role, rbac.replace_cluster_role, role
    )
    admission = client.AdmissionregistrationV1Api(api)
    create_or_replace(
        admission.read_validating_admission_policy,
        admission.create_validating_admission_policy,
        admission.replace_validating_admission_policy,
        policy,
    )
    create_or_replace(
        admission.read_validating_admission_policy_binding,
        admission.create_validating_admission_policy_binding,
        admission.replace_validating_admission_policy_binding,
        binding,
    )


MANIFEST_HEADER: Final = f"""\
# Who may exempt a namespace from the webhooks (label {EXEMPT_LABEL}): whoever
# holds ClusterRole {EXEMPTER_ROLE}, bound to nobody as shipped, or a
# cluster-admin. Printed by `python -m webhook.exemption` (a unit test keeps this file
# equal to its output); README, "Which writes reach the service".
"""


def render_manifest() -> str:
    """The three objects as one YAML file for ``kubectl apply -f``."""
    return MANIFEST_HEADER + yaml.safe_dump_all(desired_objects(), sort_keys=False)


if __name__ == "__main__":
    print(render_manifest(), end="")
