"""From push to running pod, as a new user meets the service (issue 19, the user's loop).

Each step builds on the one before, in file order: a namespace's accounts get their pull
secrets, the ``builder`` account pushes, a Pod with no pull secret of its own runs the
image, another namespace cannot, and a deleted pull Secret comes back and still pulls.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import jsonpointer
import pytest

from localcluster import runnable
from localcluster.crane import Crane
from quota.pushrecords import image_object_name
from tests.e2e.conftest import E2E, show
from tests.e2e.support import install
from tests.integration.support import pullsecrets

TEAM_A = "team-a"
TEAM_B = "team-b"
POD_TIMEOUT = 120.0
"""A Pod from create to Running: a pull of a 300 KiB image and a container start take
a few seconds here; the rest is margin for a busy 2-core machine."""
SECRET_TIMEOUT = 60.0
"""A new account to its managed pull secret (the webhook patches at create; the
controller writes the Secret within a second or two)."""
IMAGE = f"{install.ROUTE_HOST}/{TEAM_A}/app:v1"
NODE_CA_NAMESPACE = "image-registry-node-ca"
NOWHERE = "registry-v2.example/no-node"
"""A node label no node has: node-ca's pods leave every node."""
NOWHERE_POINTER = jsonpointer.escape(NOWHERE)


@pytest.fixture(scope="module")
def marker() -> str:
    return f"registry-v2-e2e-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def app_layout(e2e: E2E) -> Path:
    """A runnable image made by the test: one static binary that prints its arguments."""
    binary = runnable.build_marker_binary(e2e.work_dir / "marker")
    layout = e2e.work_dir / "app-layout"
    runnable.write_image(layout, binary, entrypoint=["/marker"])
    return layout


def _pod(namespace: str, name: str, marker: str, *, pull_policy: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "imagePullPolicy": pull_policy,
                    "args": [marker],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True,
                    },
                }
            ],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
        },
    }


def _create_pod(e2e: E2E, pod: dict[str, Any]) -> None:
    e2e.kubectl("apply", "-f", "-", input=json.dumps(pod))


def _phase(e2e: E2E, namespace: str, name: str) -> str:
    return str(e2e.cluster.get("pod", "-n", namespace, name)["status"].get("phase", ""))


def _waiting_reason(e2e: E2E, namespace: str, name: str) -> str | None:
    statuses = e2e.cluster.get("pod", "-n", namespace, name)["status"].get("containerStatuses", [])
    for status in statuses:
        waiting = status.get("state", {}).get("waiting")
        if waiting:
            return str(waiting.get("reason"))
    return None


def _wait_running_with_marker(e2e: E2E, namespace: str, name: str, marker: str) -> str:
    try:
        e2e.cluster.wait(
            lambda: _phase(e2e, namespace, name) == "Running",
            timeout=POD_TIMEOUT,
            what=f"pod {namespace}/{name} Running",
        )
    except TimeoutError as err:
        events = "\n".join(_pulled_events(e2e, namespace, name))
        raise AssertionError(f"{err}; its Events:\n{events}") from None
    return str(
        e2e.cluster.wait(
            lambda: marker in e2e.kubectl("logs", "-n", namespace, name),
            timeout=POD_TIMEOUT,
            what=f"the marker in {namespace}/{name}'s log",
        )
        and e2e.kubectl("logs", "-n", namespace, name)
    )


def _pulled_events(e2e: E2E, namespace: str, name: str) -> list[str]:
    return [
        f"{e['reason']}: {e['message']}"
        for e in e2e.cluster.pod_events(namespace, name)
        if e["reason"] in ("Pulling", "Pulled", "Failed")
    ]


def test_a_new_namespace_s_accounts_get_managed_pull_secrets(e2e: E2E) -> None:
    e2e.kubectl("create", "namespace", TEAM_A)
    for account in ("default", "builder"):
        secret = pullsecrets.wait_secret(e2e.env, TEAM_A, account, timeout=SECRET_TIMEOUT)
        assert install.ROUTE_HOST in pullsecrets.docker_config(secret)["auths"]
        names = pullsecrets.pull_secret_names(e2e.env, TEAM_A, account)
        assert names == [f"{account}-dockercfg"], names


def test_the_builder_account_pushes_through_the_front_door(e2e: E2E, app_layout: Path) -> None:
    secret = pullsecrets.wait_secret(e2e.env, TEAM_A, "builder", timeout=SECRET_TIMEOUT)
    crane_home = e2e.work_dir / "crane-builder"
    ca = e2e.work_dir / "frontdoor-ca.crt"
    ca.write_bytes(e2e.installed.frontdoor_ca)
    crane = Crane(ca, crane_home)
    (crane.config_dir / "config.json").write_text(json.dumps(pullsecrets.docker_config(secret)))
    pushed = crane.push(app_layout, IMAGE)
    assert pushed.returncode == 0, pushed.stderr
    stream = e2e.cluster.get("imagestream", "-n", TEAM_A, "app")
    tags = {t["tag"]: t["items"][0]["image"] for t in stream["status"]["tags"]}
    digest = pushed.stdout.strip().rsplit("@", 1)[1]
    assert tags == {"v1": digest}
    image = e2e.cluster.get("image", image_object_name(digest))
    assert image["dockerImageReference"].endswith(f"{TEAM_A}/app@{digest}"), image


def test_a_pod_with_no_pull_secret_of_its_own_runs_the_image(e2e: E2E, marker: str) -> None:
    pod = _pod(TEAM_A, "app", marker, pull_policy="IfNotPresent")
    _create_pod(e2e, pod)
    log = _wait_running_with_marker(e2e, TEAM_A, "app", marker)
    spec = e2e.cluster.get("pod", "-n", TEAM_A, "app")["spec"]
    # The ServiceAccount admission plugin copied the account's managed secret: the test
    # set none.
    assert spec["imagePullSecrets"] == [{"name": "default-dockercfg"}]
    events = "\n".join(_pulled_events(e2e, TEAM_A, "app"))
    show(f"pod {TEAM_A}/app", f"log: {log.strip()}\n{events}")


def test_another_namespace_cannot_pull_it_even_when_the_node_has_it(e2e: E2E, marker: str) -> None:
    e2e.kubectl("create", "namespace", TEAM_B)
    pullsecrets.wait_secret(e2e.env, TEAM_B, "default", timeout=SECRET_TIMEOUT)
    # IfNotPresent, and the image is on the node since the previous step: only the
    # kubelet's KubeletEnsureSecretPulledImages makes it ask the registry with team-b's
    # credentials.
    _create_pod(e2e, _pod(TEAM_B, "app", marker, pull_policy="IfNotPresent"))
    e2e.cluster.wait(
        lambda: _waiting_reason(e2e, TEAM_B, "app") in ("ErrImagePull", "ImagePullBackOff"),
        timeout=POD_TIMEOUT,
        what=f"pod {TEAM_B}/app failing to pull",
    )
    failures = [
        e["message"]
        for e in e2e.cluster.pod_events(TEAM_B, "app")
        if e["reason"] == "Failed" and "Failed to pull image" in e["message"]
    ]
    assert failures, e2e.cluster.pod_events(TEAM_B, "app")
    assert "403" in failures[0] and install.ROUTE_HOST in failures[0], failures[0]
    show(f"pod {TEAM_B}/app: ErrImagePull Event", failures[0])


def test_a_deleted_pull_secret_comes_back_and_still_pulls(e2e: E2E, marker: str) -> None:
    old = pullsecrets.wait_secret(e2e.env, TEAM_A, "default", timeout=SECRET_TIMEOUT)
    e2e.kubectl("delete", "secret", "-n", TEAM_A, "default-dockercfg")
    new = e2e.env.wait(
        lambda: (
            (s := pullsecrets.valid_secret(e2e.env, TEAM_A, "default"))
            and s["metadata"]["uid"] != old["metadata"]["uid"]
            and s
        ),
        timeout=SECRET_TIMEOUT,
        what="the pull secret recreated",
    )
    assert pullsecrets.token_of(new) != pullsecrets.token_of(old)
    # Always: the kubelet must pull again with the new Secret's token, not reuse the image.
    _create_pod(e2e, _pod(TEAM_A, "app-again", marker, pull_policy="Always"))
    _wait_running_with_marker(e2e, TEAM_A, "app-again", marker)
    events = _pulled_events(e2e, TEAM_A, "app-again")
    assert any(e.startswith("Pulled: Successfully pulled") for e in events), events


def test_the_node_pulls_only_while_it_trusts_the_registry(e2e: E2E, marker: str) -> None:
    """node-ca's files are what makes the pull work: without them containerd checks the
    front door's certificate against the system's CAs and refuses it."""
    daemonset = ["daemonset/image-registry-node-ca", "-n", NODE_CA_NAMESPACE]
    away = {"spec": {"template": {"spec": {"nodeSelector": {NOWHERE: "true"}}}}}
    e2e.kubectl("patch", *daemonset, "--type=merge", "-p", json.dumps(away))
    e2e.cluster.wait(
        lambda: not e2e.cluster.get("pods", "-n", NODE_CA_NAMESPACE)["items"],
        timeout=POD_TIMEOUT,
        what="node-ca gone from the node",
    )
    trusted = e2e.cluster.node.hosts_dir / install.ROUTE_HOST
    shutil.rmtree(trusted)
    _create_pod(e2e, _pod(TEAM_A, "untrusted", marker, pull_policy="Always"))
    e2e.cluster.wait(
        lambda: _waiting_reason(e2e, TEAM_A, "untrusted") in ("ErrImagePull", "ImagePullBackOff"),
        timeout=POD_TIMEOUT,
        what="the pull failing without node-ca's files",
    )
    failed = [m for m in _pulled_events(e2e, TEAM_A, "untrusted") if m.startswith("Failed:")]
    assert any("x509" in m or "certificate" in m for m in failed), failed
    back = [{"op": "remove", "path": f"/spec/template/spec/nodeSelector/{NOWHERE_POINTER}"}]
    e2e.kubectl("patch", *daemonset, "--type=json", "-p", json.dumps(back))
    e2e.cluster.wait(
        lambda: (trusted / "hosts.toml").exists(),
        timeout=POD_TIMEOUT,
        what="node-ca writing the route's hosts.toml again",
    )
    _create_pod(e2e, _pod(TEAM_A, "trusted", marker, pull_policy="Always"))
    _wait_running_with_marker(e2e, TEAM_A, "trusted", marker)
    show("node trust: a pull without node-ca's files", failed[0])
