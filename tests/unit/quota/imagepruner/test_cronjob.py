"""The CronJob an ImagePruner asks for, and the step that converges the cluster's."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from quota.imagepruner.cronjob import (
    CRONJOB_NAME,
    SERVICE_ACCOUNT,
    Action,
    PrunerSettings,
    covers,
    desired_cronjob,
    plan,
    pruner_args,
)

SETTINGS = PrunerSettings(namespace="image-registry-system", image="registry-v2/policy:0.1.0")
UPSTREAM = PrunerSettings(
    namespace="image-registry-system",
    image="registry-v2/policy:0.1.0",
    upstream_registry="https://image-registry-upstream.image-registry-system.svc:5000",
    upstream_ca_file="/upstream-ca/ca.crt",
    upstream_ca_configmap="image-registry-upstream-ca",
)


def pruner(uid: str = "uid-1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "imageregistry.operator.alauda.io/v1",
        "kind": "ImagePruner",
        "metadata": {"name": "cluster", "uid": uid, "generation": 1},
        "spec": spec,
    }


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def test_the_spec_reaches_the_schedule_suspend_history_and_command() -> None:
    cronjob = desired_cronjob(
        pruner(
            schedule="*/30 * * * *",
            suspend=True,
            keepTagRevisions=5,
            keepYoungerThanDuration="2h",
            ignoreInvalidImageReferences=True,
            successfulJobsHistoryLimit=1,
            failedJobsHistoryLimit=4,
            logLevel="Debug",
        ),
        SETTINGS,
    )
    assert cronjob["metadata"]["name"] == CRONJOB_NAME
    assert cronjob["metadata"]["namespace"] == "image-registry-system"
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["suspend"]) == ("*/30 * * * *", True)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (1, 4)
    container = pod_spec(cronjob)["containers"][0]
    assert container["image"] == "registry-v2/policy:0.1.0"
    assert container["args"] == [
        "prune",
        "images",
        "--confirm",
        "--keep-tag-revisions=5",
        "--keep-younger-than=2h",
        "--ignore-invalid-refs",
        "--log-level=DEBUG",
    ]


def test_a_spec_without_fields_renders_openshifts_defaults() -> None:
    cronjob = desired_cronjob(pruner(), SETTINGS)
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["suspend"]) == ("0 0 * * *", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    assert pod_spec(cronjob)["containers"][0]["args"] == [
        "prune",
        "images",
        "--confirm",
        "--keep-tag-revisions=3",
        "--keep-younger-than=60m",
        "--log-level=INFO",
    ]


@pytest.mark.parametrize(
    ("level", "flag"),
    [
        ("", "INFO"),
        ("Normal", "INFO"),
        ("Debug", "DEBUG"),
        ("Trace", "DEBUG"),
        ("TraceAll", "DEBUG"),
    ],
)
def test_openshifts_log_levels_map_to_the_commands(level: str, flag: str) -> None:
    assert pruner_args({"logLevel": level}, SETTINGS)[-1] == f"--log-level={flag}"


def test_keep_tag_revisions_zero_is_passed_not_defaulted() -> None:
    assert "--keep-tag-revisions=0" in pruner_args({"keepTagRevisions": 0}, SETTINGS)


def test_with_an_upstream_registry_the_pruner_deletes_there_trusting_its_ca_at_the_same_path() -> (
    None
):
    cronjob = desired_cronjob(pruner(), UPSTREAM)
    container = pod_spec(cronjob)["containers"][0]
    assert container["args"][-3:] == [
        "--upstream-registry=https://image-registry-upstream.image-registry-system.svc:5000",
        "--upstream-ca-file=/upstream-ca/ca.crt",
        "--log-level=INFO",
    ]
    assert {"name": "upstream-ca", "mountPath": "/upstream-ca", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {"name": "upstream-ca", "configMap": {"name": "image-registry-upstream-ca"}} in pod_spec(
        cronjob
    )["volumes"]


def test_without_the_cas_configmap_no_ca_file_is_named_that_the_pod_could_not_read() -> None:
    settings = PrunerSettings(
        namespace="ns", image="i", upstream_registry="https://r:5000", upstream_ca_file="/x/ca.crt"
    )
    args = pruner_args({}, settings)
    assert "--upstream-registry=https://r:5000" in args
    assert not any(a.startswith("--upstream-ca-file") for a in args)


def test_the_pod_runs_as_the_pruner_under_pod_security_restricted() -> None:
    spec = pod_spec(desired_cronjob(pruner(), SETTINGS))
    assert spec["serviceAccountName"] == SERVICE_ACCOUNT
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = spec["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_the_cronjob_is_controlled_by_the_pruner() -> None:
    refs = desired_cronjob(pruner(uid="u-9"), SETTINGS)["metadata"]["ownerReferences"]
    assert refs == [
        {
            "apiVersion": "imageregistry.operator.alauda.io/v1",
            "kind": "ImagePruner",
            "name": "cluster",
            "uid": "u-9",
            "controller": True,
            "blockOwnerDeletion": False,
        }
    ]


def as_stored(cronjob: dict[str, Any]) -> dict[str, Any]:
    """The CronJob as the API server returns it: defaults filled in, status added."""
    stored = copy.deepcopy(cronjob)
    stored["metadata"].update({"uid": "cj-1", "resourceVersion": "7"})
    pod = pod_spec(stored)
    pod.update({"dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30})
    pod["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    pod["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] = "v1"
    stored["status"] = {"lastScheduleTime": "2026-12-07T00:00:00Z"}
    return stored


def test_no_pruner_creates_the_default_one() -> None:
    step = plan(None, None, SETTINGS)
    assert step.action is Action.CREATE_PRUNER
    assert step.desired is not None
    assert step.desired["metadata"] == {"name": "cluster"}


def test_a_pruner_being_deleted_leaves_the_cronjob_to_the_garbage_collector() -> None:
    deleting = pruner()
    deleting["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    assert plan(deleting, as_stored(desired_cronjob(pruner(), SETTINGS)), SETTINGS).action is (
        Action.WAIT_DELETION
    )


def test_no_cronjob_is_created() -> None:
    step = plan(pruner(), None, SETTINGS)
    assert step.action is Action.CREATE
    assert step.desired == desired_cronjob(pruner(), SETTINGS)


def test_the_api_servers_defaults_are_not_an_edit() -> None:
    stored = as_stored(desired_cronjob(pruner(), SETTINGS))
    assert plan(pruner(), stored, SETTINGS).action is Action.NONE


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["spec"].update(schedule="* * * * *"),
        lambda c: c["spec"].update(suspend=True),
        lambda c: pod_spec(c)["containers"][0]["args"].append("--keep-tag-revisions=0"),
        lambda c: pod_spec(c)["containers"][0].update(image="evil/pruner"),
        lambda c: pod_spec(c).update(serviceAccountName="image-registry-controller"),
        lambda c: pod_spec(c)["securityContext"].update(runAsNonRoot=False),
        lambda c: c["metadata"]["labels"].pop("app.kubernetes.io/name"),
        lambda c: c["metadata"].update(ownerReferences=[]),
        lambda c: c["metadata"]["ownerReferences"][0].update(controller=False),
    ],
    ids=["schedule", "suspend", "args", "image", "account", "security", "label", "owner", "ctl"],
)
def test_a_hand_edit_is_undone(edit: Any) -> None:
    stored = as_stored(desired_cronjob(pruner(), SETTINGS))
    edit(stored)
    step = plan(pruner(), stored, SETTINGS)
    assert step.action is Action.UPDATE
    assert step.desired == desired_cronjob(pruner(), SETTINGS)


def test_a_new_spec_updates_the_cronjob() -> None:
    stored = as_stored(desired_cronjob(pruner(), SETTINGS))
    step = plan(pruner(keepTagRevisions=1), stored, SETTINGS)
    assert step.action is Action.UPDATE


def test_a_cronjob_of_a_deleted_pruner_is_left_to_the_garbage_collector() -> None:
    stored = as_stored(desired_cronjob(pruner(uid="old"), SETTINGS))
    assert plan(pruner(uid="new"), stored, SETTINGS).action is Action.WAIT_COLLECTION


def test_a_cronjob_without_an_owner_is_taken_over() -> None:
    stored = as_stored(desired_cronjob(pruner(), SETTINGS))
    del stored["metadata"]["ownerReferences"]
    step = plan(pruner(uid="new"), stored, SETTINGS)
    assert step.action is Action.UPDATE
    assert step.desired is not None
    assert step.desired["metadata"]["ownerReferences"][0]["uid"] == "new"


def test_covers_compares_lists_by_length_and_ignores_extra_keys() -> None:
    assert covers({"a": 1, "b": 2}, {"a": 1})
    assert not covers({"a": [1, 2]}, {"a": [1]})
    assert not covers(None, {"a": 1})
    assert covers({"a": [{"x": 1, "y": 2}]}, {"a": [{"x": 1}]})
