"""The image's command line, run as the image runs it, against the local control plane.

No Docker engine here, so the pieces of a pod are put together by hand: the Dockerfile's
ENTRYPOINT (the console script pip installs; here the virtualenv's, same module) with the
controller Deployment's args, the image's ENV and numeric USER, the Deployment's env, and
a read-only root filesystem with one writable scratch directory for TMPDIR (the pod's
``readOnlyRootFilesystem`` and its ``/tmp`` emptyDir). The environment also adapts the pod
to a shared machine: loopback ports picked by the kernel, the kubeconfig of the
controller's ServiceAccount in place of the in-cluster one, and certificates left to the
stack that owns them. Root is needed to remount and to switch users; elsewhere it skips.

Local stack only: it stops the stack's controller so that the image's one leads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.processes import ManagedProcess
from localcluster.stack import CONTROLLER_ACCOUNT, SERVICE_NAMESPACE
from tests.dockerimage import read
from tests.integration.support.cluster import MANIFESTS, ClusterEnv
from tests.integration.support.controller import holder
from tests.integration.support.pullsecrets import wait_secret

pytestmark = pytest.mark.local_only

TAKEOVER_DEADLINE = 60.0
"""Start-up (imports, the first list of every cache) and one Lease acquisition: seconds
on an idle machine, tens of them on 2 cores shared with a test run."""
SHUTDOWN_DEADLINE = 15.0
"""ManagedProcess.stop's SIGTERM-to-SIGKILL wait: a clean stop returns well within it."""
PORTS_ON_A_SHARED_MACHINE = {
    # Current names, then the names they replace: the first one set wins.
    "REGISTRY_WEBHOOK_METRICS_BIND_ADDRESS": "127.0.0.1:0",
    "REGISTRY_WEBHOOK_METRICS_BIND": "127.0.0.1:0",
    "REGISTRY_WEBHOOK_HEALTH_PROBE_BIND_ADDRESS": "127.0.0.1:0",
}
IMAGE_VENV_BIN = "/opt/venv/bin"
"""Where the image's virtualenv keeps the console script; here, this test's virtualenv."""
STACK_OWNS_THE_CERTIFICATES = {"REGISTRY_WEBHOOK_MANAGE_CERTIFICATES": "false"}
"""The local stack serves its own dev certificates, as cert-manager would in a cluster."""


def controller_container() -> dict[str, Any]:
    """The controller's container as the base writes it (kustomize adds only labels and
    the image tag, neither of which reaches the process)."""
    [deployment] = yaml.safe_load_all((MANIFESTS / "base" / "controller.yaml").read_text())
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def pod_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's env as the kubelet sets it (values and the namespace fieldRef)."""
    env: dict[str, str] = {}
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[entry["name"]] = SERVICE_NAMESPACE
    return env


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The pod's /tmp: writable by the image's user, the only such place."""
    directory = Path(tempfile.mkdtemp(prefix="registry-v2-image-"))
    directory.chmod(0o1777)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def sandbox(user: str, writable: Path) -> list[str]:
    """A command prefix: a private mount namespace whose root filesystem is read-only
    except ``writable``, then the image's user, dying with its parent as ManagedProcess
    children do (a uid change would clear the parent-death signal)."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.skip("needs root with unshare and setpriv to run as the image runs")
    uid, _, gid = user.partition(":")
    script = (
        'mount --bind "$1" "$1" && mount -o remount,bind,ro / && shift && '
        f'exec setpriv --reuid={uid} --regid={gid or uid} --clear-groups --pdeathsig=TERM -- "$@"'
    )
    return ["unshare", "--mount", "--propagation=private", "sh", "-c", script, "sh", str(writable)]


def image_path(path: str) -> str:
    entries = path.split(":")
    assert entries[0] == IMAGE_VENV_BIN, path
    return ":".join([str(Path(sys.executable).parent), *entries[1:]])


def running_as(pid: int) -> str:
    """The real uid of a process (after the sandbox's exec chain: the same pid)."""
    [line] = [
        line
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Uid:")
    ]
    return line.split()[1]


def test_the_sandbox_is_read_only_but_for_the_scratch_directory(scratch: Path) -> None:
    """Without this, a broken sandbox would let the test below pass on any image."""
    prefix = sandbox(read().user, scratch)
    probe = "import sys; open(sys.argv[1], 'w').write('x')"
    for target, allowed in ((scratch / "ok", True), (Path(sys.prefix) / "probe", False)):
        result = subprocess.run(
            [*prefix, sys.executable, "-c", probe, str(target)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (result.returncode == 0) == allowed, result.stderr
        if not allowed:
            assert "Read-only file system" in result.stderr
    assert (scratch / "ok").read_text() == "x"


def test_the_images_controller_command_line_leads_and_reconciles(
    cluster: ClusterEnv, namespace: str, scratch: Path
) -> None:
    stack = cluster.stack
    assert stack is not None
    image = read()
    container = controller_container()
    argv = [
        *sandbox(image.user, scratch),
        str(Path(sys.executable).parent / image.entrypoint[0]),
        *image.entrypoint[1:],
        *container["args"],
    ]
    kubeconfig = scratch / "kubeconfig"
    shutil.copyfile(stack.process_kubeconfig(CONTROLLER_ACCOUNT), kubeconfig)
    kubeconfig.chmod(0o644)
    env = {
        **image.env,
        # The image's PATH, its virtualenv first, with this test's virtualenv in its place.
        "PATH": image_path(image.env["PATH"]),
        **pod_env(container),
        "TMPDIR": str(scratch),
        "KUBECONFIG": str(kubeconfig),
        **PORTS_ON_A_SHARED_MACHINE,
        **STACK_OWNS_THE_CERTIFICATES,
    }
    before = cluster.wait(
        lambda: holder(cluster), timeout=TAKEOVER_DEADLINE, what="the stack's controller to lead"
    )
    stack.stop_controller()  # it releases the Lease on its way out
    process = ManagedProcess("image-controller", argv, stack.cp.log_dir, env=env, cwd=Path("/"))
    try:
        cluster.wait(
            lambda: not process.running() or holder(cluster) not in ("", before),
            timeout=TAKEOVER_DEADLINE,
            what="the image's controller to take the Lease or exit",
        )
        assert process.running(), process.log_tail()
        assert running_as(process.pid) == image.user.partition(":")[0]
        cluster.kubectl("create", "serviceaccount", "pulls", "-n", namespace)
        wait_secret(cluster, namespace, "pulls")
        assert process.running(), process.log_tail()
    finally:
        process.stop(SHUTDOWN_DEADLINE)
        stack.start_controller()
    log = process.log_path.read_text()
    assert process.popen.returncode == 0, log
    for refusal in ("Read-only file system", "Permission denied"):
        assert refusal not in log
