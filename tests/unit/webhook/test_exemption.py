from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from quota.names import IMAGE_GROUP
from webhook.exemption import (
    DENIAL,
    EXEMPTER_ROLE,
    GUARD_NAME,
    LABEL_CHANGES,
    MAY_EXEMPT,
    desired_objects,
    render_manifest,
)
from webhook.registration import EXEMPT_LABEL

BASE = Path(__file__).parents[3] / "manifests" / "base"
SHIPPED = BASE / "exemption-guard.yaml"


def test_the_shipped_guard_is_what_the_module_prints() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "webhook.exemption"], check=True, capture_output=True, text=True
    ).stdout
    assert printed == render_manifest() == SHIPPED.read_text()
    assert "&id" not in printed and "*id" not in printed


def test_the_kustomize_base_installs_the_guard() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert SHIPPED.name in kustomization["resources"]


def test_the_label_is_guarded_on_every_namespace_create_and_update_and_fails_closed() -> None:
    _, policy, binding = desired_objects()
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    [rule] = spec["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["apiVersions"]) == ([""], ["v1"])
    assert rule["resources"][0] == "namespaces"
    assert all(r.startswith("namespaces") for r in rule["resources"])
    assert rule["operations"] == ["CREATE", "UPDATE"]
    assert binding["kind"] == "ValidatingAdmissionPolicyBinding"
    assert binding["spec"] == {"policyName": GUARD_NAME, "validationActions": ["Deny"]}
    assert "matchResources" not in binding["spec"]  # every namespace, ours included


def test_only_writes_that_touch_the_label_are_judged() -> None:
    _, policy, _ = desired_objects()
    [condition] = policy["spec"]["matchConditions"]
    assert condition["expression"] == LABEL_CHANGES
    create, _, update = LABEL_CHANGES.partition(" : ")
    assert create.startswith("request.operation == 'CREATE' ? ")
    assert f"'{EXEMPT_LABEL}' in object.metadata.labels" in create
    assert "oldObject" not in create  # null on a create
    # Presence compared, then the value: setting, removing and changing are all judged.
    labelled = f"(has(object.metadata.labels) && '{EXEMPT_LABEL}' in object.metadata.labels)"
    assert f"{labelled} != {labelled.replace('object', 'oldObject')}" in update
    assert (
        f"object.metadata.labels['{EXEMPT_LABEL}'] != oldObject.metadata.labels['{EXEMPT_LABEL}']"
    ) in update


def test_the_right_checked_is_the_one_the_shipped_role_grants_and_nothing_else() -> None:
    role, policy, _ = desired_objects()
    assert role["kind"] == "ClusterRole" and role["metadata"]["name"] == EXEMPTER_ROLE
    [rule] = role["rules"]
    [group], [resource], [verb] = rule["apiGroups"], rule["resources"], rule["verbs"]
    assert group == IMAGE_GROUP
    [validation] = policy["spec"]["validations"]
    expected = f"authorizer.group('{group}').resource('{resource}').check('{verb}').allowed()"
    assert validation["expression"] == MAY_EXEMPT == expected
    assert (validation["message"], validation["reason"]) == (DENIAL, "Forbidden")
    assert EXEMPT_LABEL in DENIAL and EXEMPTER_ROLE in DENIAL


def test_no_shipped_role_grants_the_right_by_a_wildcard() -> None:
    """The exempter role is the one way to the right: any shipped role naming every
    resource or verb of the Image group would hand it out with something else."""
    for path in BASE.glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") not in ("ClusterRole", "Role"):
                continue
            for rule in document.get("rules") or []:
                if IMAGE_GROUP in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []):
                    assert "*" not in rule.get("resources", []), path.name
                    assert "*" not in rule.get("verbs", []), path.name
