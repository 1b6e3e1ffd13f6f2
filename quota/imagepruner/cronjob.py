"""The ``image-pruner`` CronJob that ``imagepruners/cluster`` asks for, and what to do with
the one the cluster holds: pure, so that every field the user's spec reaches is tested
without a cluster.

The controller converges one CronJob from one ImagePruner, level-based, as OpenShift's
registry operator does:

1. no ImagePruner: create the default one (OpenShift's operator does, so that a new
   cluster prunes), and the next pass renders its CronJob;
2. the ImagePruner is being deleted, or the CronJob is owned by an ImagePruner that is
   gone (an earlier ``cluster``): nothing; the garbage collector removes the CronJob
   through its ownerReference. Taking it over instead would race the collector, and a
   deleted ImagePruner's CronJob would sometimes survive it;
3. no CronJob: create it; a CronJob that differs from the rendering in a field we set
   (a hand edit, a new spec, an older controller's rendering, no owner): replace it with
   the rendering; else nothing.

"Differs" reads only the fields we render: the API server fills in many more (the pod
template's defaults), and those are not an edit.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from quota.names import OPERATOR_GROUP, OPERATOR_VERSION
from quota.objects import Obj, mapping, metadata

PRUNER_NAME: Final = "cluster"
"""The one ImagePruner (the CRD refuses any other name), as OpenShift's."""
IMAGEPRUNERS: Final = "imagepruners"
CRONJOB_NAME: Final = "image-pruner"
"""The CronJob in the service's namespace (the product contract, DESIGN.md: Pruning)."""
SERVICE_ACCOUNT: Final = "image-pruner"
"""The pruner's own identity (manifests/base/image-pruner.yaml grants it what it reads and
deletes); never the controller's."""
CONTAINER_NAME: Final = "image-pruner"
APP_LABELS: Final = {
    "app.kubernetes.io/name": "image-pruner",
    "app.kubernetes.io/component": "pruner",
    "app.kubernetes.io/part-of": "registry-v2",
}
"""On the CronJob, its Jobs and their pods: ``kubectl get jobs -l
app.kubernetes.io/name=image-pruner``; the controller watches the Jobs by it."""
JOB_SELECTOR: Final = "app.kubernetes.io/name=image-pruner"

# OpenShift's defaults (imageregistry/v1 ImagePrunerSpec), also the CRD's, for a spec read
# from a cluster whose CRD predates a field.
DEFAULT_SCHEDULE: Final = "0 0 * * *"
"""Daily at midnight, in the kube-controller-manager's time zone (OpenShift's default)."""
DEFAULT_KEEP_TAG_REVISIONS: Final = 3
"""``prune images --keep-tag-revisions``' default, and OpenShift's."""
DEFAULT_KEEP_YOUNGER_THAN: Final = "60m"
"""``prune images --keep-younger-than``' default, and OpenShift's ``keepYoungerThanDuration``."""
DEFAULT_HISTORY_LIMIT: Final = 3
"""Finished Jobs kept of each outcome: OpenShift's default for both history limits."""
DEFAULT_LOG_LEVEL: Final = "Normal"
LOG_LEVELS: Final = {
    "": "INFO",
    "Normal": "INFO",
    "Debug": "DEBUG",
    "Trace": "DEBUG",
    "TraceAll": "DEBUG",
}
"""OpenShift's operator log levels (the CRD's enum) to the command's ``--log-level``: our
command has one level below INFO, so the three verbose ones meet there."""

STARTING_DEADLINE_SECONDS: Final = 3600
"""A run missed while the kube-controller-manager was down still starts within an hour of
its time; later it waits for the next one (and past 100 misses a CronJob without a
deadline stops scheduling at all: the cronjob controller's own limit)."""
RUN_AS_USER: Final = 65532
"""The image's USER (Dockerfile), as the other Deployments run it."""
RESOURCES: Final = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}
"""The controller's own (manifests/base/controller.yaml): the pruner lists as much as the
controller caches (every Pod, workload, ImageStream and Image) once per run."""
UPSTREAM_CA_VOLUME: Final = "upstream-ca"


@dataclass(frozen=True)
class PrunerSettings:
    """What the controller knows that the ImagePruner does not say."""

    namespace: str
    """The service's namespace: the CronJob's, its ServiceAccount's."""
    image: str
    """The controller's own image (``--pruner-image``): the command is in it."""
    upstream_registry: str | None = None
    """The registry behind the front door (the controller's ``--upstream-registry``): with
    it the pruner also deletes the pruned manifests there. Its garbage collection needs
    the registry's storage and binary, which this pod has not: it runs where they are
    (README, Pruning)."""
    upstream_ca_file: str | None = None
    """The controller's ``--upstream-ca-file``; the pruner reads it at the same path."""
    upstream_ca_configmap: str | None = None
    """The ConfigMap that file comes from (``--pruner-upstream-ca-configmap``), mounted at
    the file's directory in the pruner's pod."""


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(value: object, default: str) -> str:
    return value if isinstance(value, str) and value else default


def pruner_args(spec: Mapping[str, Any], settings: PrunerSettings) -> list[str]:
    """The ``prune images`` command line the spec asks for: it acts (``--confirm``), as
    OpenShift's CronJob does; with an upstream registry it deletes the pruned manifests
    there too (``--prune-registry`` is not passed: the command refuses it without the
    registry's configuration and storage, which this pod does not mount)."""
    revisions = _int(spec.get("keepTagRevisions"), DEFAULT_KEEP_TAG_REVISIONS)
    younger = _str(spec.get("keepYoungerThanDuration"), DEFAULT_KEEP_YOUNGER_THAN)
    args = [
        "prune",
        "images",
        "--confirm",
        f"--keep-tag-revisions={revisions}",
        f"--keep-younger-than={younger}",
    ]
    if spec.get("ignoreInvalidImageReferences") is True:
        args.append("--ignore-invalid-refs")
    if settings.upstream_registry:
        args.append(f"--upstream-registry={settings.upstream_registry}")
        if settings.upstream_ca_file and settings.upstream_ca_configmap:
            args.append(f"--upstream-ca-file={settings.upstream_ca_file}")
    level = spec.get("logLevel")
    args.append(f"--log-level={LOG_LEVELS.get(level if isinstance(level, str) else '', 'INFO')}")
    return args


def owner_reference(pruner: Mapping[str, Any]) -> Obj:
    """The ImagePruner as the CronJob's controller: deleting it deletes the CronJob (a
    cluster-scoped owner may own a namespaced dependent). ``blockOwnerDeletion: false``:
    true needs ``update`` on ``imagepruners/finalizers`` where the
    OwnerReferencesPermissionEnforcement admission plugin runs, so the CronJob would be
    refused there; it matters only for foreground deletion."""
    return {
        "apiVersion": f"{OPERATOR_GROUP}/{OPERATOR_VERSION}",
        "kind": "ImagePruner",
        "name": PRUNER_NAME,
        "uid": metadata(pruner).get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": False,
    }


def _volumes(settings: PrunerSettings) -> tuple[list[Obj], list[Obj]]:
    volumes: list[Obj] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[Obj] = [{"name": "tmp", "mountPath": "/tmp"}]
    if settings.upstream_registry and settings.upstream_ca_file and settings.upstream_ca_configmap:
        volumes.append(
            {"name": UPSTREAM_CA_VOLUME, "configMap": {"name": settings.upstream_ca_configmap}}
        )
        mounts.append(
            {
                "name": UPSTREAM_CA_VOLUME,
                "mountPath": posixpath.dirname(settings.upstream_ca_file) or "/",
                "readOnly": True,
            }
        )
    return volumes, mounts


def desired_cronjob(pruner: Mapping[str, Any], settings: PrunerSettings) -> Obj:
    """The CronJob ``pruner`` asks for: schedule, suspend and history limits from its spec,
    the command's flags from the rest, Pod Security ``restricted`` (the service's namespace
    enforces it)."""
    spec = mapping(pruner.get("spec"))
    volumes, mounts = _volumes(settings)
    container: Obj = {
        "name": CONTAINER_NAME,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "args": pruner_args(spec, settings),
        "env": [
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            }
        ],
        "resources": RESOURCES,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": CRONJOB_NAME,
            "namespace": settings.namespace,
            "labels": dict(APP_LABELS),
            "ownerReferences": [owner_reference(pruner)],
        },
        "spec": {
            "schedule": _str(spec.get("schedule"), DEFAULT_SCHEDULE),
            "suspend": spec.get("suspend") is True,
            "successfulJobsHistoryLimit": _int(
                spec.get("successfulJobsHistoryLimit"), DEFAULT_HISTORY_LIMIT
            ),
            "failedJobsHistoryLimit": _int(
                spec.get("failedJobsHistoryLimit"), DEFAULT_HISTORY_LIMIT
            ),
            # Two runs at once would race each other's deletes; a run still going when the
            # next is due makes that one skip (OpenShift's choice too).
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
            "jobTemplate": {
                "metadata": {"labels": dict(APP_LABELS)},
                "spec": {
                    # A failed run is not retried at once: pruning is idempotent, and the
                    # next schedule runs it again; the failure is reported meanwhile.
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": dict(APP_LABELS)},
                        "spec": {
                            "serviceAccountName": SERVICE_ACCOUNT,
                            "restartPolicy": "Never",
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": RUN_AS_USER,
                                "runAsGroup": RUN_AS_USER,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [container],
                            "volumes": volumes,
                        },
                    },
                },
            },
        },
    }


def covers(existing: object, desired: object) -> bool:
    """Every field ``desired`` sets has the same value in ``existing``; fields only the
    API server set (defaults) are not compared. Lists compare item by item at equal length,
    so an added or removed container, argument or variable is a difference."""
    if isinstance(desired, Mapping):
        if not isinstance(existing, Mapping):
            return False
        return all(covers(existing.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(existing, list) or len(existing) != len(desired):
            return False
        return all(covers(e, d) for e, d in zip(existing, desired, strict=True))
    return bool(existing == desired)


class Action(StrEnum):
    """What to do about the pruner and its CronJob."""

    NONE = "the CronJob is as rendered"
    CREATE_PRUNER = "no ImagePruner: the default one is created"
    WAIT_DELETION = "the ImagePruner is being deleted: the garbage collector removes the CronJob"
    WAIT_COLLECTION = "the CronJob's ImagePruner is gone: the garbage collector removes it"
    CREATE = "no CronJob: created"
    UPDATE = "the CronJob differs from the rendering: replaced"


@dataclass(frozen=True)
class Plan:
    action: Action
    desired: Obj | None = None
    """The CronJob to create or replace with; the default ImagePruner for CREATE_PRUNER."""


def default_pruner() -> Obj:
    """What the controller creates when there is none: the name alone, the CRD's defaults
    fill in the spec (so ``kubectl get -o yaml`` shows them)."""
    return {
        "apiVersion": f"{OPERATOR_GROUP}/{OPERATOR_VERSION}",
        "kind": "ImagePruner",
        "metadata": {"name": PRUNER_NAME},
        "spec": {},
    }


def plan(pruner: Obj | None, cronjob: Obj | None, settings: PrunerSettings) -> Plan:
    """The one step that brings the CronJob closer to ``pruner`` (module docstring)."""
    if pruner is None:
        return Plan(Action.CREATE_PRUNER, default_pruner())
    if metadata(pruner).get("deletionTimestamp"):
        return Plan(Action.WAIT_DELETION)
    desired = desired_cronjob(pruner, settings)
    if cronjob is None:
        return Plan(Action.CREATE, desired)
    meta = metadata(cronjob)
    uid = metadata(pruner).get("uid")
    if any(
        mapping(ref).get("kind") == "ImagePruner" and mapping(ref).get("uid") != uid
        for ref in meta.get("ownerReferences") or []
    ):
        return Plan(Action.WAIT_COLLECTION)
    if (
        covers(cronjob.get("spec"), desired["spec"])
        and covers(meta.get("labels"), desired["metadata"]["labels"])
        and meta.get("ownerReferences") == desired["metadata"]["ownerReferences"]
    ):
        return Plan(Action.NONE)
    return Plan(Action.UPDATE, desired)
