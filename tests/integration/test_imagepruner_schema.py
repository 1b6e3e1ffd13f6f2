"""The ImagePruner CRD (manifests/crds) defaults and validates at apply, against the real
API server: every default is filled in, and each rule refuses a bad value with a message
that names the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.support.cluster import ClusterEnv

KIND = "imagepruner.imageregistry.operator.alauda.io"
DEFAULT_SPEC = {
    "schedule": "0 0 * * *",
    "suspend": False,
    "keepTagRevisions": 3,
    "keepYoungerThanDuration": "60m",
    "ignoreInvalidImageReferences": False,
    "successfulJobsHistoryLimit": 3,
    "failedJobsHistoryLimit": 3,
    "logLevel": "Normal",
}
"""OpenShift's defaults (imageregistry/v1 ImagePrunerSpec), with its newer 60m."""


def pruner(spec: dict[str, Any], name: str = "cluster") -> dict[str, Any]:
    return {
        "apiVersion": "imageregistry.operator.alauda.io/v1",
        "kind": "ImagePruner",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_an_empty_spec_gets_every_default(cluster: ClusterEnv) -> None:
    # The controller keeps `cluster` in place (it creates it when absent): a dry-run patch
    # that drops the spec shows what the API server fills in, and changes nothing.
    cluster.apply(pruner({}))
    out = cluster.kubectl(
        "patch", KIND, "cluster", "--type=merge", "-p", '{"spec": null}',
        "--dry-run=server", "-o", "json",
    ).stdout  # fmt: skip
    assert json.loads(out)["spec"] == DEFAULT_SPEC


@pytest.mark.parametrize(
    "duration", ["0", "60m", "1h30m", ".5s", "1.5h", "300ms", "2562047h47m16.8s"]
)
def test_a_duration_prune_images_takes_is_accepted(cluster: ClusterEnv, duration: str) -> None:
    spec = {"keepYoungerThanDuration": duration}
    cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pruner(spec)))


@pytest.mark.parametrize(
    "schedule",
    ["0 0 * * *", "*/15 2-4 1,15 JAN-mar mon-FRI", "0 0 ? * 0", "@daily", "@every 1h30m"],
)
def test_a_schedule_a_cronjob_accepts_is_accepted(cluster: ClusterEnv, schedule: str) -> None:
    cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=json.dumps(pruner({"schedule": schedule}))
    )


REFUSED = [
    pytest.param(
        "other", {}, "metadata.name must be cluster: the ImagePruner is a singleton", id="name"
    ),
    pytest.param(
        "cluster", {"schedule": "0 0 * *"}, "spec.schedule: Invalid value", id="four-fields"
    ),
    pytest.param(
        "cluster",
        {"schedule": "60 * * * *"},
        "the minute field (the 1st) must be 0-59",
        id="minute",
    ),
    pytest.param(
        "cluster", {"schedule": "0 24 * * *"}, "the hour field (the 2nd) must be 0-23", id="hour"
    ),
    pytest.param(
        "cluster", {"schedule": "0 0 32 * *"}, "the day-of-month field (the 3rd)", id="dom"
    ),
    pytest.param("cluster", {"schedule": "0 0 * 13 *"}, "the month field (the 4th)", id="month"),
    pytest.param("cluster", {"schedule": "0 0 * * 7"}, "the day-of-week field (the 5th)", id="dow"),
    pytest.param("cluster", {"schedule": "*/0 * * * *"}, "the minute field", id="zero-step"),
    pytest.param(
        "cluster", {"schedule": "TZ=UTC 0 0 * * *"}, "spec.schedule: Invalid value", id="tz"
    ),
    pytest.param("cluster", {"schedule": "@every 1d"}, "spec.schedule: Invalid value", id="every"),
    pytest.param(
        "cluster",
        {"keepTagRevisions": -1},
        "spec.keepTagRevisions in body should be greater than or equal to 0",
        id="keep-tag-revisions",
    ),
    pytest.param(
        "cluster",
        {"successfulJobsHistoryLimit": -1},
        "spec.successfulJobsHistoryLimit in body should be greater than or equal to 0",
        id="successful-history",
    ),
    pytest.param(
        "cluster",
        {"failedJobsHistoryLimit": -1},
        "spec.failedJobsHistoryLimit in body should be greater than or equal to 0",
        id="failed-history",
    ),
    pytest.param(
        "cluster",
        {"keepYoungerThanDuration": "1d"},
        'spec.keepYoungerThanDuration: Invalid value: "string": must be a non-negative '
        "duration in Go's syntax",
        id="duration-unit",
    ),
    pytest.param(
        "cluster", {"keepYoungerThanDuration": "-5m"}, "spec.keepYoungerThanDuration", id="negative"
    ),
    pytest.param(
        "cluster",
        {"keepYoungerThanDuration": "99999999999999h"},
        'spec.keepYoungerThanDuration: Invalid value: "string": must be at most 2562047h47m16.8s',
        id="past-go-maximum",
    ),
    pytest.param(
        "cluster",
        {"keepYoungerThanDuration": "2562047h47m16.9s"},
        "must be at most 2562047h47m16.8s",
        id="just-past-the-bound",
    ),
    pytest.param(
        "cluster",
        {"logLevel": "Verbose"},
        'spec.logLevel: Unsupported value: "Verbose": supported values: "", "Normal", "Debug", '
        '"Trace", "TraceAll"',
        id="log-level",
    ),
]


@pytest.mark.parametrize(("name", "spec", "message"), REFUSED)
def test_kubectl_apply_of_a_bad_pruner_is_refused_naming_the_field(
    cluster: ClusterEnv, name: str, spec: dict[str, Any], message: str
) -> None:
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(pruner(spec, name)), check=False)
    assert result.returncode != 0
    assert "is invalid" in result.stderr
    assert message in result.stderr, result.stderr
