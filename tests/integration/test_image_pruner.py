"""The controller renders the ``image-pruner`` CronJob from ``imagepruners/cluster`` and
reports its runs, against the real API server and kube-controller-manager (its cronjob
and garbage-collector controllers), the controller running as its ServiceAccount under
the manifests' RBAC (base/rbac.yaml, base/image-pruner.yaml).

No node runs here, so a Job makes no Pod: a test starts a run as a user would
(``kubectl create job --from=cronjob/image-pruner``) and then writes the outcome the Job
controller would write, through the Job's status subresource.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from localcluster.stack import PRUNER_IMAGE, SERVICE_NAMESPACE
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv

PRUNER = "imagepruner.imageregistry.operator.alauda.io"
CRONJOB = "image-pruner"
GC_DEADLINE = 30.0
"""For the garbage collector to delete a dependent of a deleted owner: it works through
its graph every few seconds; on 2 cores shared with a test run, seconds more."""
SCHEDULE_DEADLINE = 60.0 + 30.0
"""For the cronjob controller to start a run of ``* * * * *``: the next minute, and the
controller's own resync (it rechecks each CronJob at its next scheduled time)."""


def pruner(cluster: ClusterEnv) -> dict[str, Any] | None:
    result = cluster.kubectl("get", PRUNER, "cluster", "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def cronjob(cluster: ClusterEnv) -> dict[str, Any] | None:
    result = cluster.kubectl(
        "get", "cronjob", CRONJOB, "-n", SERVICE_NAMESPACE, "-o", "json", check=False
    )
    return json.loads(result.stdout) if result.returncode == 0 else None


def container(cron: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return dict(spec["containers"][0])


def conditions(obj: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    status = (obj or {}).get("status") or {}
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or []}


def rendered(cluster: ClusterEnv) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pruner and its CronJob once this stack's controller has rendered the pruner's
    generation: owned, current and with this stack's image (another controller in the
    session, test_rbac's with the shipped manifest's identity, renders the manifest's
    image, which this one replaces)."""

    def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
        p, c = pruner(cluster), cronjob(cluster)
        if p is None or c is None:
            return None
        owned = c["metadata"].get("ownerReferences", [{}])[0].get("uid") == p["metadata"]["uid"]
        current = p.get("status", {}).get("observedGeneration") == p["metadata"]["generation"]
        ours = container(c).get("image") == PRUNER_IMAGE
        return (p, c) if owned and current and ours else None

    result: tuple[dict[str, Any], dict[str, Any]] = cluster.wait(
        both, timeout=CACHE_DEADLINE, what="the pruner's CronJob rendered"
    )
    return result


@pytest.fixture
def defaults(cluster: ClusterEnv) -> Iterator[None]:
    """The singleton back to its defaults after the test (a null spec is defaulted)."""
    rendered(cluster)
    yield
    cluster.kubectl("patch", PRUNER, "cluster", "--type=merge", "-p", '{"spec": null}')
    cluster.kubectl(
        "delete", "jobs", "-n", SERVICE_NAMESPACE, "-l", "app.kubernetes.io/name=image-pruner"
    )


def test_the_default_pruner_is_created_with_its_cronjob(
    cluster: ClusterEnv, defaults: None
) -> None:
    p, c = rendered(cluster)
    assert p["spec"]["schedule"] == "0 0 * * *"
    assert (c["spec"]["schedule"], c["spec"]["suspend"]) == ("0 0 * * *", False)
    pod = c["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "image-pruner"
    assert container(c)["image"] == PRUNER_IMAGE
    assert container(c)["args"][:5] == [
        "prune",
        "images",
        "--confirm",
        "--keep-tag-revisions=3",
        "--keep-younger-than=60m",
    ]
    ref = c["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("ImagePruner", "cluster", True)
    assert cluster.wait(
        lambda: (
            conditions(pruner(cluster)).get("Available") == ("True", "CronJobRendered")
            and conditions(pruner(cluster)).get("Scheduled") == ("True", "Scheduled")
        ),
        timeout=CACHE_DEADLINE,
        what="Available and Scheduled",
    )


def test_the_spec_reaches_the_cronjob(cluster: ClusterEnv, defaults: None) -> None:
    spec = {
        "schedule": "*/30 * * * *",
        "suspend": True,
        "keepTagRevisions": 5,
        "keepYoungerThanDuration": "2h",
        "ignoreInvalidImageReferences": True,
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 2,
        "logLevel": "Debug",
    }
    cluster.kubectl("patch", PRUNER, "cluster", "--type=merge", "-p", json.dumps({"spec": spec}))
    _, c = rendered(cluster)
    assert (c["spec"]["schedule"], c["spec"]["suspend"]) == ("*/30 * * * *", True)
    assert (c["spec"]["successfulJobsHistoryLimit"], c["spec"]["failedJobsHistoryLimit"]) == (1, 2)
    assert container(c)["args"] == [
        "prune",
        "images",
        "--confirm",
        "--keep-tag-revisions=5",
        "--keep-younger-than=2h",
        "--ignore-invalid-refs",
        "--log-level=DEBUG",
    ]
    cluster.wait(
        lambda: conditions(pruner(cluster)).get("Scheduled") == ("False", "Suspended"),
        timeout=CACHE_DEADLINE,
        what="Scheduled False while suspended",
    )


def test_a_hand_edit_of_the_cronjob_is_undone(cluster: ClusterEnv, defaults: None) -> None:
    cluster.kubectl(
        "patch", "cronjob", CRONJOB, "-n", SERVICE_NAMESPACE, "--type=merge",
        "-p", '{"spec": {"schedule": "* * * * *", "suspend": true}}',
    )  # fmt: skip
    cluster.wait(
        lambda: (
            (c := cronjob(cluster)) is not None
            and (c["spec"]["schedule"], c["spec"]["suspend"]) == ("0 0 * * *", False)
        ),
        timeout=CACHE_DEADLINE,
        what="the hand edit undone",
    )


def test_a_deleted_cronjob_comes_back(cluster: ClusterEnv, defaults: None) -> None:
    _, old = rendered(cluster)
    cluster.kubectl("delete", "cronjob", CRONJOB, "-n", SERVICE_NAMESPACE)
    cluster.wait(
        lambda: (
            (c := cronjob(cluster)) is not None and c["metadata"]["uid"] != old["metadata"]["uid"]
        ),
        timeout=CACHE_DEADLINE,
        what="the CronJob created again",
    )


def test_deleting_the_pruner_removes_its_cronjob_and_the_default_comes_back(
    cluster: ClusterEnv, defaults: None
) -> None:
    # As OpenShift's operator: the singleton always exists; deleting it resets it (and
    # its CronJob) to the defaults. suspend: true is how pruning is stopped.
    cluster.kubectl(
        "patch", PRUNER, "cluster", "--type=merge", "-p", '{"spec": {"keepTagRevisions": 9}}'
    )
    old_pruner, old_cronjob = rendered(cluster)
    assert "--keep-tag-revisions=9" in container(old_cronjob)["args"]
    cluster.kubectl("delete", PRUNER, "cluster")
    cluster.wait(
        lambda: (
            (c := cronjob(cluster)) is None
            or c["metadata"]["uid"] != old_cronjob["metadata"]["uid"]
        ),
        timeout=GC_DEADLINE,
        what="the deleted pruner's CronJob gone",
    )
    new_pruner, new_cronjob = rendered(cluster)
    assert new_pruner["metadata"]["uid"] != old_pruner["metadata"]["uid"]
    assert new_pruner["spec"]["keepTagRevisions"] == 3
    assert "--keep-tag-revisions=3" in container(new_cronjob)["args"]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def finish(cluster: ClusterEnv, job: str, *, succeeded: bool) -> None:
    """What the Job controller writes when the Job's Pod ends (there is no Pod here)."""
    now = _now()

    def condition(kind: str, reason: str = "", message: str = "") -> dict[str, str]:
        return {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
            "lastProbeTime": now,
        }

    if succeeded:
        status: dict[str, Any] = {
            "startTime": now,
            "completionTime": now,
            "succeeded": 1,
            "conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
        }
    else:
        message = "Job has reached the specified backoff limit"
        status = {
            "startTime": now,
            "failed": 1,
            "conditions": [
                condition("FailureTarget", "BackoffLimitExceeded", message),
                condition("Failed", "BackoffLimitExceeded", message),
            ],
        }
    cluster.kubectl(
        "patch", "job", job, "-n", SERVICE_NAMESPACE, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip


def start_run(cluster: ClusterEnv, job: str) -> None:
    """A run as a user starts one by hand."""
    cluster.kubectl("create", "job", job, f"--from=cronjob/{CRONJOB}", "-n", SERVICE_NAMESPACE)


def scheduled_run(cluster: ClusterEnv) -> str:
    """The name of the Job the cronjob controller starts on the schedule (it records
    a Job's end in the CronJob's status only for a Job it started)."""
    active: list[dict[str, Any]] = cluster.wait(
        lambda: ((cronjob(cluster) or {}).get("status") or {}).get("active"),
        timeout=SCHEDULE_DEADLINE,
        what="a run started on the schedule",
    )
    return str(active[0]["name"])


def last_job(cluster: ClusterEnv) -> dict[str, Any]:
    return dict(((pruner(cluster) or {}).get("status") or {}).get("lastJob") or {})


def status(cluster: ClusterEnv) -> dict[str, Any]:
    return dict((pruner(cluster) or {}).get("status") or {})


def test_the_status_reports_a_failed_run(cluster: ClusterEnv, defaults: None) -> None:
    # Suspended, so that the schedule starts no run of its own meanwhile.
    cluster.kubectl("patch", PRUNER, "cluster", "--type=merge", "-p", '{"spec": {"suspend": true}}')
    rendered(cluster)
    start_run(cluster, "prune-by-hand")
    cluster.wait(
        lambda: (
            last_job(cluster).get("name") == "prune-by-hand"
            and last_job(cluster).get("outcome") == "Active"
        ),
        timeout=CACHE_DEADLINE,
        what="the run reported active",
    )
    finish(cluster, "prune-by-hand", succeeded=False)
    cluster.wait(
        lambda: (
            last_job(cluster).get("outcome") == "Failed"
            and conditions(pruner(cluster)).get("Failed") == ("True", "JobFailed")
        ),
        timeout=CACHE_DEADLINE,
        what="the failure reported",
    )
    assert last_job(cluster)["message"] == (
        "BackoffLimitExceeded: Job has reached the specified backoff limit"
    )
    assert "Failed" in cluster.kubectl("get", PRUNER, "cluster").stdout  # the Last Job column


def test_the_status_reports_a_scheduled_run_and_its_success(
    cluster: ClusterEnv, defaults: None
) -> None:
    cluster.kubectl(
        "patch", PRUNER, "cluster", "--type=merge", "-p", '{"spec": {"schedule": "* * * * *"}}'
    )
    job = scheduled_run(cluster)
    # No second run while this one is judged.
    cluster.kubectl("patch", PRUNER, "cluster", "--type=merge", "-p", '{"spec": {"suspend": true}}')
    cluster.wait(
        lambda: (
            status(cluster).get("lastScheduleTime")
            and last_job(cluster) == {"name": job, "outcome": "Active"}
        ),
        timeout=CACHE_DEADLINE,
        what="the scheduled run reported",
    )
    finish(cluster, job, succeeded=True)
    cluster.wait(
        lambda: (
            status(cluster).get("lastSuccessfulTime")
            and last_job(cluster).get("outcome") == "Succeeded"
            and conditions(pruner(cluster)).get("Failed") == ("False", "JobSucceeded")
        ),
        timeout=CACHE_DEADLINE,
        what="the success and the CronJob's last successful time reported",
    )


def test_the_pruners_pod_is_admitted_under_pod_security_restricted(
    cluster: ClusterEnv, namespace: str
) -> None:
    """The service's namespace enforces ``restricted`` (manifests/base/namespace.yaml):
    the Pod the CronJob makes is admitted there, judged by the API server's PodSecurity
    admission in a namespace that enforces it (a dry run: no node runs it)."""
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    _, c = rendered(cluster)
    template = c["spec"]["jobTemplate"]["spec"]["template"]
    spec = {**template["spec"], "serviceAccountName": "default"}  # the pruner's is not here
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pruner"}, "spec": spec}
    result = cluster.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "PodSecurity" not in result.stderr
