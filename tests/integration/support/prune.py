"""``image-registry-webhook prune images`` run as a user runs it: a process of its own with
a kubeconfig, its table on stdout, its exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from localcluster import kubeconfig
from localcluster.binaries import REPO_ROOT
from localcluster.frontdoor import LocalFrontDoor
from localcluster.stack import PRUNER_MANIFEST, SERVICE_NAMESPACE
from tests.integration.support.audit import DECISION, access_of, audit_events, granted
from tests.integration.support.cluster import ClusterEnv

PRUNE_SECONDS = 120.0
"""Bound on one run: it lists a test cluster's objects and deletes a few."""
GATED_COLLECTOR = """#!/bin/sh
# The registry binary, held before its garbage collection until the test lets it go:
# it says it has started, then blocks reading a FIFO the test writes to.
: > "{started}"
read _ < "{gate}"
exec "{binary}" "$@"
"""


class GatedCollector:
    """A stand-in for ``registry`` that runs the real one once :meth:`release` is called,
    so a test acts while the front door is read-only and GC has not begun."""

    def __init__(self, directory: Path, binary: Path) -> None:
        self.started = directory / "started"
        self.gate = directory / "gate"
        self.path = directory / "registry"
        os.mkfifo(self.gate)
        self.path.write_text(
            GATED_COLLECTOR.format(started=self.started, gate=self.gate, binary=binary)
        )
        self.path.chmod(0o755)

    def release(self) -> None:
        with self.gate.open("w") as gate:
            gate.write("go\n")


def prune_argv(kubeconfig: Path, door: LocalFrontDoor, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "cli", "prune", "images",
        f"--kubeconfig={kubeconfig}",
        "--log-format=text",
        f"--internal-registry={door.host}",
        f"--upstream-registry={door.registry.url}",
        f"--upstream-ca-file={door.registry.ca_file}",
        *args,
    ]  # fmt: skip


def prune_images(
    kubeconfig: Path, door: LocalFrontDoor, *args: str
) -> subprocess.CompletedProcess[str]:
    """A prune of this stack, its registry named as the controller names it."""
    argv = prune_argv(kubeconfig, door, *args)
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=PRUNE_SECONDS, check=False
    )


def account_kubeconfig(stack: ClusterEnv, tmp_path: Path, account: str, role: str) -> Path:
    """A kubeconfig acting as ServiceAccount ``account`` of the service's namespace (whose
    requests the audit log records), bound to the pruning manifest's ClusterRole ``role``
    as an admin would bind it; the manifest (with that binding) is applied first."""
    assert stack.stack is not None and stack.stack.cp.pki is not None
    stack.kubectl("create", "namespace", SERVICE_NAMESPACE, check=False)
    stack.kubectl("create", "serviceaccount", account, "-n", SERVICE_NAMESPACE, check=False)
    stack.kubectl("apply", "-f", str(bound_manifest(tmp_path, account, role)))
    token = stack.kubectl("create", "token", account, "-n", SERVICE_NAMESPACE).stdout.strip()
    path = tmp_path / f"{account}.kubeconfig"
    kubeconfig.write_token(
        path,
        server=stack.stack.cp.server,
        ca_cert=stack.stack.cp.pki.ca_cert,
        token=token,
        user=f"system:serviceaccount:{SERVICE_NAMESPACE}:{account}",
    )
    return path


def bound_manifest(tmp_path: Path, account: str, role: str) -> Path:
    """``PRUNER_MANIFEST`` with a ClusterRoleBinding of ``role`` to ``account`` added."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"test:{account}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": SERVICE_NAMESPACE}],
    }
    path = tmp_path / f"{account}-rbac.yaml"
    path.write_text(PRUNER_MANIFEST.read_text() + "---\n" + yaml.safe_dump(binding))
    return path


def assert_grants_exactly_used(stack: ClusterEnv, tmp_path: Path, account: str) -> None:
    """No request of ``account`` was refused by RBAC, and every (group, resource, verb)
    the manifest grants it was used (``test_rbac``'s rule, for the pruning identities)."""
    assert stack.stack is not None
    events = list(audit_events(stack.stack.cp.audit_log, account))
    refused = sorted(
        {str(access_of(e)) for e in events if e["annotations"].get(DECISION) == "forbid"}
    )
    assert not refused, f"{account} was refused by RBAC: {refused}"
    used = {access_of(e) for e in events}
    manifest = tmp_path / f"{account}-rbac.yaml"
    unused = sorted(str(a) for a in granted(manifest, account) - used)
    assert not unused, f"{account} is granted what it never used: {unused}"
