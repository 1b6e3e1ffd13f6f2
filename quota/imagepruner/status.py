"""What ``kubectl get imagepruner cluster -o yaml`` tells a user: whether pruning runs, and
how the last run went, read from the CronJob's status and its Jobs.

The controller reports; the pruning Job does not report itself. Its Pod then needs no
write access to the ImagePruner, and a run that never reports (its Pod cannot pull the
image, is evicted or OOM-killed, or the node is lost) is still reported: the Job's own
status says so, as the kube-controller-manager keeps it.

Conditions as OpenShift's registry operator sets them on its ImagePruner:

- ``Available``: the CronJob is rendered from the spec (False with the API server's
  refusal when it is not);
- ``Scheduled``: runs are scheduled (False while ``spec.suspend``);
- ``Failed``: the newest finished Job failed (its reason and message).

A condition's ``lastTransitionTime`` moves only when its status changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from quota.imagepruner.cronjob import CRONJOB_NAME
from quota.objects import Obj, mapping, metadata
from quota.timestamps import format_rfc3339

AVAILABLE: Final = "Available"
SCHEDULED: Final = "Scheduled"
FAILED: Final = "Failed"
ACTIVE: Final = "Active"
SUCCEEDED: Final = "Succeeded"


def _condition_true(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in mapping(job.get("status")).get("conditions") or []:
        c = mapping(condition)
        if c.get("type") == kind and c.get("status") == "True":
            return c
    return None


def controlled_by(job: Mapping[str, Any], uid: str) -> bool:
    """``job``'s controller is the object ``uid`` (what the cronjob controller and
    ``kubectl create job --from=cronjob/...`` both set)."""
    return any(
        mapping(ref).get("controller") is True and mapping(ref).get("uid") == uid
        for ref in metadata(job).get("ownerReferences") or []
    )


def newest_job(jobs: Iterable[Mapping[str, Any]], cronjob_uid: str) -> Mapping[str, Any] | None:
    """The newest Job the CronJob controls, by creation (then name: a scheduled Job's name
    ends in its scheduled minute)."""
    owned = [j for j in jobs if cronjob_uid and controlled_by(j, cronjob_uid)]
    if not owned:
        return None
    return max(
        owned,
        key=lambda j: (str(metadata(j).get("creationTimestamp") or ""), metadata(j).get("name")),
    )


def job_report(job: Mapping[str, Any]) -> Obj:
    """One Job's name, outcome (Active, Succeeded, Failed) and times; a failure's reason
    and message as the Job controller wrote them."""
    status = mapping(job.get("status"))
    report: Obj = {"name": metadata(job).get("name", ""), "outcome": ACTIVE}
    if status.get("startTime"):
        report["startTime"] = status["startTime"]
    failed = _condition_true(job, "Failed")
    if _condition_true(job, "Complete") is not None:
        report["outcome"] = SUCCEEDED
        if status.get("completionTime"):
            report["completionTime"] = status["completionTime"]
    elif failed is not None:
        report["outcome"] = FAILED
        if failed.get("lastTransitionTime"):
            report["completionTime"] = failed["lastTransitionTime"]
        reason, message = failed.get("reason") or "", failed.get("message") or ""
        report["message"] = ": ".join(part for part in (reason, message) if part)
    return report


def _condition(
    previous: Mapping[str, Mapping[str, Any]],
    kind: str,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
) -> Obj:
    value = "True" if status else "False"
    old = previous.get(kind, {})
    since = old.get("lastTransitionTime") if old.get("status") == value else None
    return {
        "type": kind,
        "status": value,
        # metav1.Time's precision: a second, as every condition the API server writes.
        "lastTransitionTime": since or format_rfc3339(now.replace(microsecond=0)),
        "reason": reason,
        "message": message,
    }


def desired_status(
    pruner: Mapping[str, Any],
    cronjob: Mapping[str, Any] | None,
    jobs: Iterable[Mapping[str, Any]],
    *,
    render_error: str | None,
    now: datetime,
) -> Obj:
    """The ImagePruner's status: ``cronjob`` as it stands after this pass (None: absent),
    its Jobs, and ``render_error``, the API server's refusal of our write, if any."""
    old_status = mapping(pruner.get("status"))
    previous = {str(mapping(c).get("type")): mapping(c) for c in old_status.get("conditions") or []}
    spec = mapping(pruner.get("spec"))
    status: Obj = {}
    generation = metadata(pruner).get("generation")
    if render_error is None and cronjob is not None and isinstance(generation, int):
        status["observedGeneration"] = generation
    elif "observedGeneration" in old_status:
        status["observedGeneration"] = old_status["observedGeneration"]

    if render_error is not None:
        available = _condition(
            previous,
            AVAILABLE,
            False,
            "RenderFailed",
            f"CronJob {CRONJOB_NAME}: {render_error}",
            now,
        )
    elif cronjob is None:
        available = _condition(
            previous,
            AVAILABLE,
            False,
            "CronJobMissing",
            f"CronJob {CRONJOB_NAME} not created yet",
            now,
        )
    else:
        available = _condition(
            previous,
            AVAILABLE,
            True,
            "CronJobRendered",
            f"CronJob {metadata(cronjob).get('namespace', '')}/{CRONJOB_NAME} runs prune images",
            now,
        )
    suspended = spec.get("suspend") is True
    scheduled = _condition(
        previous,
        SCHEDULED,
        not suspended and cronjob is not None,
        "Suspended" if suspended else ("Scheduled" if cronjob is not None else "CronJobMissing"),
        "spec.suspend is true: no new runs start"
        if suspended
        else f"runs on the schedule {spec.get('schedule', '')!r}",
        now,
    )

    cron_status = mapping(mapping(cronjob).get("status"))
    for field in ("lastScheduleTime", "lastSuccessfulTime"):
        if cron_status.get(field):
            status[field] = cron_status[field]
    owned_uid = str(metadata(cronjob or {}).get("uid") or "")
    jobs = list(jobs)
    newest = newest_job(jobs, owned_uid)
    last = job_report(newest) if newest is not None else old_status.get("lastJob")
    if last:
        status["lastJob"] = last
    finished = [j for j in jobs if job_report(j)["outcome"] != ACTIVE]
    newest_finished = newest_job(finished, owned_uid)
    if newest_finished is not None:
        report = job_report(newest_finished)
        last_failed = report["outcome"] == FAILED
        failed = _condition(
            previous,
            FAILED,
            last_failed,
            "JobFailed" if last_failed else "JobSucceeded",
            f"Job {report['name']} failed: {report.get('message', '')}"
            if last_failed
            else f"Job {report['name']} succeeded",
            now,
        )
    elif FAILED in previous:  # its Jobs are gone (history limits): the last word stands
        failed = dict(previous[FAILED])
    else:
        failed = _condition(previous, FAILED, False, "NoRunYet", "no run has finished yet", now)
    status["conditions"] = [available, scheduled, failed]
    return status
