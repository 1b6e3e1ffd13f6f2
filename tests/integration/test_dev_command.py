"""``make dev`` (``python -m localcluster``): up, usable, and nothing left after Ctrl-C."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster import devstate, network, nodehost
from localcluster.binaries import REPO_ROOT
from localcluster.waiting import wait_for

pytestmark = pytest.mark.local_only


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children = {int(c) for c in task.read_text().split()}
            except OSError:
                continue
            todo.extend(children - found)
            found |= children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_dev_stack_starts_prints_kubeconfig_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "localcluster", "--dir", str(tmp_path / "state")],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            wait_for(
                lambda: "Ctrl-C stops everything" in log.read_text(),
                timeout=180,
                what="the dev stack to come up",
            )
            text = log.read_text()
            kubeconfig = tmp_path / "state" / "kubeconfig"
            assert f"export KUBECONFIG={kubeconfig}" in text
            children = descendants(dev.pid)
            names = {Path(f"/proc/{p}/comm").read_text().strip() for p in children if alive(p)}
            assert {"etcd", "kube-apiserver", "kube-controller"} <= {n[:15] for n in names}
            # The node: its parts run, and it is Ready (make dev prints the banner after).
            assert {"containerd", "kubelet", "kube-proxy", "kube-scheduler"} <= names
            kubectl = next(line.split()[1] for line in text.splitlines() if "kubectl:" in line)
            nodes = subprocess.run(
                [
                    kubectl,
                    f"--kubeconfig={kubeconfig}",
                    "get",
                    "serviceaccount",
                    "default",
                    "-n",
                    "default",
                    "-o",
                    "name",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            assert nodes.stdout.strip() == "serviceaccount/default"
            # The front door before a real registry, named in every managed pull secret.
            assert "registry" in names
            host = next(line.split()[1] for line in text.splitlines() if "registry:" in line)

            def pull_secret_hosts() -> set[str]:
                secret = subprocess.run(
                    [kubectl, f"--kubeconfig={kubeconfig}", "get", "secret",
                     "default-dockercfg", "-n", "default", "-o", "json"],
                    capture_output=True, text=True, timeout=30,
                )  # fmt: skip
                if secret.returncode != 0:
                    return set()
                data = json.loads(secret.stdout)["data"][".dockerconfigjson"]
                return set(json.loads(base64.b64decode(data))["auths"])

            wait_for(
                lambda: host in pull_secret_hosts(),
                timeout=60,
                what=f"the default pull secret to hold credentials for {host}",
            )
            # Where developer tools (python -m localcluster.attacks) find the stack.
            state = devstate.read(tmp_path / "state" / devstate.STATE_FILE)
            assert (state.frontdoor_host, state.kubeconfig, state.kubectl) == (
                host, str(kubeconfig), kubectl,
            )  # fmt: skip
            dev.send_signal(signal.SIGINT)
            assert dev.wait(60) == 0
            assert not (tmp_path / "state" / devstate.STATE_FILE).exists()
        finally:
            if dev.poll() is None:
                dev.kill()
    assert "no process left running" in log.read_text()
    left = [p for p in children if alive(p)]
    assert not left, left
    # What the node did to the host is undone: its bridge, mounts and cgroups.
    assert not Path(f"/sys/class/net/{network.BRIDGE}").exists()
    state_dir = str((tmp_path / "state").resolve())
    assert state_dir not in Path("/proc/self/mountinfo").read_text()
    assert not any(Path(h, nodehost.KUBEPODS).exists() for h in Path("/sys/fs/cgroup").iterdir())
