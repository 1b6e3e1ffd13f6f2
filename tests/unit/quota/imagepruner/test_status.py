"""The ImagePruner's status: conditions and the last run, from the CronJob and its Jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quota.imagepruner.status import desired_status, job_report, newest_job

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
CRONJOB_UID = "cj-1"


def pruner(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "cluster", "uid": "p-1", "generation": 4},
        "spec": {"schedule": "0 0 * * *", "suspend": False, **spec},
        "status": status or {},
    }


def cronjob(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "image-pruner",
            "namespace": "image-registry-system",
            "uid": CRONJOB_UID,
        },
        "status": status,
    }


def job(
    name: str,
    created: str,
    outcome: str | None = None,
    *,
    owner: str = CRONJOB_UID,
    message: str = "",
) -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": created}
    if outcome == "Complete":
        status["conditions"] = [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"},
        ]
        status["completionTime"] = "2026-12-07T00:05:00Z"
    elif outcome == "Failed":
        status["conditions"] = [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": message,
                "lastTransitionTime": "2026-12-07T00:06:00Z",
            }
        ]
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "ownerReferences": [{"kind": "CronJob", "uid": owner, "controller": True}],
        },
        "status": status,
    }


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_a_rendered_cronjob_with_no_run_yet_is_available_and_scheduled() -> None:
    status = desired_status(pruner(), cronjob(), [], render_error=None, now=NOW)
    assert conditions(status) == {
        "Available": ("True", "CronJobRendered"),
        "Scheduled": ("True", "Scheduled"),
        "Failed": ("False", "NoRunYet"),
    }
    assert status["observedGeneration"] == 4
    assert "lastJob" not in status


def test_a_suspended_pruner_is_not_scheduled() -> None:
    status = desired_status(pruner(suspend=True), cronjob(), [], render_error=None, now=NOW)
    assert conditions(status)["Scheduled"] == ("False", "Suspended")


def test_a_refused_cronjob_is_not_available_with_the_api_servers_words() -> None:
    status = desired_status(
        pruner(status={"observedGeneration": 3}),
        None,
        [],
        render_error='CronJob.batch "image-pruner" is invalid: spec.schedule: Invalid value',
        now=NOW,
    )
    assert conditions(status)["Available"] == ("False", "RenderFailed")
    assert "spec.schedule: Invalid value" in status["conditions"][0]["message"]
    assert status["observedGeneration"] == 3  # this generation was never rendered


def test_the_cronjobs_times_are_reported() -> None:
    status = desired_status(
        pruner(),
        cronjob(lastScheduleTime="2026-12-07T00:00:00Z", lastSuccessfulTime="2026-12-06T00:04:00Z"),
        [],
        render_error=None,
        now=NOW,
    )
    assert status["lastScheduleTime"] == "2026-12-07T00:00:00Z"
    assert status["lastSuccessfulTime"] == "2026-12-06T00:04:00Z"


def test_the_newest_failed_job_is_the_last_run_and_fails_the_pruner() -> None:
    jobs = [
        job("image-pruner-1", "2026-12-05T00:00:00Z", "Complete"),
        job(
            "image-pruner-2",
            "2026-12-06T00:00:00Z",
            "Failed",
            message="Job has reached the specified backoff limit",
        ),
        job("someone-elses", "2026-12-07T00:00:00Z", "Complete", owner="other"),
    ]
    status = desired_status(pruner(), cronjob(), jobs, render_error=None, now=NOW)
    assert status["lastJob"] == {
        "name": "image-pruner-2",
        "outcome": "Failed",
        "startTime": "2026-12-06T00:00:00Z",
        "completionTime": "2026-12-07T00:06:00Z",
        "message": "BackoffLimitExceeded: Job has reached the specified backoff limit",
    }
    assert conditions(status)["Failed"] == ("True", "JobFailed")
    assert "image-pruner-2 failed: BackoffLimitExceeded" in status["conditions"][2]["message"]


def test_a_running_job_is_the_last_run_and_the_last_finished_one_decides_failed() -> None:
    jobs = [
        job("image-pruner-1", "2026-12-05T00:00:00Z", "Failed"),
        job("image-pruner-2", "2026-12-06T00:00:00Z"),
    ]
    status = desired_status(pruner(), cronjob(), jobs, render_error=None, now=NOW)
    assert status["lastJob"]["outcome"] == "Active"
    assert conditions(status)["Failed"] == ("True", "JobFailed")


def test_a_success_clears_failed() -> None:
    jobs = [
        job("image-pruner-1", "2026-12-05T00:00:00Z", "Failed"),
        job("image-pruner-2", "2026-12-06T00:00:00Z", "Complete"),
    ]
    status = desired_status(pruner(), cronjob(), jobs, render_error=None, now=NOW)
    assert status["lastJob"]["outcome"] == "Succeeded"
    assert status["lastJob"]["completionTime"] == "2026-12-07T00:05:00Z"
    assert conditions(status)["Failed"] == ("False", "JobSucceeded")


def test_a_conditions_transition_time_moves_only_when_its_status_changes() -> None:
    first = desired_status(pruner(), cronjob(), [], render_error=None, now=NOW)
    again = desired_status(pruner(status=first), cronjob(), [], render_error=None, now=LATER)
    assert again == first
    suspended = desired_status(
        pruner(status=first, suspend=True), cronjob(), [], render_error=None, now=LATER
    )
    times = {c["type"]: c["lastTransitionTime"] for c in suspended["conditions"]}
    assert times == {
        "Available": "2026-12-07T12:00:00Z",
        "Scheduled": "2026-12-07T13:00:00Z",
        "Failed": "2026-12-07T12:00:00Z",
    }


def test_the_last_run_outlives_its_job() -> None:
    jobs = [job("image-pruner-2", "2026-12-06T00:00:00Z", "Failed")]
    first = desired_status(pruner(), cronjob(), jobs, render_error=None, now=NOW)
    after = desired_status(pruner(status=first), cronjob(), [], render_error=None, now=LATER)
    assert after["lastJob"] == first["lastJob"]
    assert conditions(after)["Failed"] == ("True", "JobFailed")


def test_newest_job_ignores_jobs_another_object_controls() -> None:
    mine = job("a", "2026-12-05T00:00:00Z")
    other = job("b", "2026-12-06T00:00:00Z", owner="x")
    assert newest_job([mine, other], CRONJOB_UID) is mine
    assert newest_job([other], CRONJOB_UID) is None
    assert newest_job([mine], "") is None


def test_an_active_job_has_no_completion_time() -> None:
    assert job_report(job("a", "2026-12-05T00:00:00Z")) == {
        "name": "a",
        "outcome": "Active",
        "startTime": "2026-12-05T00:00:00Z",
    }


def test_a_transition_time_is_to_the_second_as_the_api_servers() -> None:
    status = desired_status(
        pruner(), cronjob(), [], render_error=None, now=NOW.replace(microsecond=781351)
    )
    assert {c["lastTransitionTime"] for c in status["conditions"]} == {"2026-12-07T12:00:00Z"}
