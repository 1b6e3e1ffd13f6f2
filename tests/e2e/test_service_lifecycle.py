"""The service's own life as pods: a fresh install, a rolling restart under load, a leader
that goes away."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
import uuid
from typing import Any

from tests.e2e.conftest import E2E, show
from tests.e2e.support import install
from tests.integration.support import objects
from tests.integration.support.load import Load

LOAD_PER_SECOND = 5.0
"""ServiceAccounts (each with its ImageStream: two admissions) per second during the
restart: a busy cluster's steady trickle, paced so the 2-core machine keeps up."""
ROLLOUT_TIMEOUT = 300.0
"""A rolling restart of two webhook pods: each new pod starts in seconds, each old one
drains for its preStop pause (15 s) and graceful stop."""
AFTER_ROLLOUT_SECONDS = 5.0
"""The load keeps running this long after the rollout completes: the last old pod's
connections are the ones a careless shutdown drops."""
LEASE = "image-registry-controller"
CERTIFICATE_SECRET = "image-registry-webhook-tls"
KUBELET_SECRET_RETRY_SECONDS = 30.0
"""How long after the controller writes the certificate a pod that mounts it may still
wait: the kubelet retries a failed volume mount with exponential back-off (0.5 s
doubling), so a pod that started before the Secret existed waits for its next retry."""


def _time(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _ready_at(pod: dict[str, Any]) -> dt.datetime | None:
    for condition in pod["status"].get("conditions", []):
        if condition["type"] == "Ready" and condition["status"] == "True":
            return _time(condition["lastTransitionTime"])
    return None


def test_a_fresh_install_waits_no_longer_than_the_certificate_takes(e2e: E2E) -> None:
    secret = e2e.cluster.get("secret", "-n", install.NAMESPACE, CERTIFICATE_SECRET)
    written = _time(secret["metadata"]["creationTimestamp"])
    pods = e2e.cluster.get(
        "pods", "-n", install.NAMESPACE, "-l", "app.kubernetes.io/name=image-registry-webhook"
    )["items"]
    lines = [f"install (apply to every Deployment available): {e2e.timings['install_seconds']} s"]
    for pod in pods:
        created = _time(pod["metadata"]["creationTimestamp"])
        ready = _ready_at(pod)
        assert ready is not None, pod["status"]
        after_secret = (ready - written).total_seconds()
        lines.append(
            f"{pod['metadata']['name']}: Secret written {(written - created).total_seconds():.0f} s"
            f" after the pod was created, pod Ready {after_secret:.0f} s after the Secret"
        )
        assert after_secret <= KUBELET_SECRET_RETRY_SECONDS, lines
    show("fresh install: the webhook pods and their certificate", "\n".join(lines))


def test_a_rolling_restart_of_the_webhook_under_load_fails_no_admission(e2e: E2E) -> None:
    namespace = f"load-{uuid.uuid4().hex[:6]}"
    e2e.kubectl("create", "namespace", namespace)
    load = Load(e2e.env.api, namespace, per_second=LOAD_PER_SECOND).start()
    started = time.monotonic()
    try:
        e2e.kubectl(
            "rollout", "restart", "deployment/image-registry-webhook", "-n", install.NAMESPACE
        )
        e2e.kubectl(
            "rollout",
            "status",
            "deployment/image-registry-webhook",
            "-n",
            install.NAMESPACE,
            f"--timeout={int(ROLLOUT_TIMEOUT)}s",
        )
        load.keep_running_until(time.monotonic() - load.started + AFTER_ROLLOUT_SECONDS)
    finally:
        load.finish()
    took = time.monotonic() - started
    show(
        "rollout restart of the webhook under load",
        f"admissions sent: {load.created}, failed: {len(load.failures)} "
        f"(over {took:.0f} s at {LOAD_PER_SECOND * 2:.0f}/s)\n" + "\n".join(load.failures[:10]),
    )
    assert load.created > 0
    assert load.failures == []


def _holder(e2e: E2E) -> tuple[str, int]:
    lease = e2e.cluster.get("lease", "-n", install.NAMESPACE, LEASE)
    return str(lease["spec"].get("holderIdentity") or ""), int(
        lease["spec"]["leaseDurationSeconds"]
    )


def test_deleting_the_controller_leader_s_pod_hands_the_lease_over(e2e: E2E) -> None:
    leader, duration = e2e.cluster.wait(
        lambda: _holder(e2e)[0] and _holder(e2e),
        timeout=60,
        what="a controller leader",
    )
    pods = e2e.cluster.get(
        "pods", "-n", install.NAMESPACE, "-l", "app.kubernetes.io/name=image-registry-controller"
    )["items"]
    names = [p["metadata"]["name"] for p in pods]
    leader_pod = next(n for n in names if leader.startswith(n))
    deleted = time.monotonic()
    e2e.kubectl("delete", "pod", "-n", install.NAMESPACE, leader_pod, "--wait=false")
    new_leader = e2e.cluster.wait(
        lambda: (h := _holder(e2e)[0]) and not h.startswith(leader_pod) and h,
        timeout=2 * duration,
        what="another replica holding the Lease",
    )
    handed_over = time.monotonic() - deleted
    show(
        "controller leader pod deleted",
        f"{leader_pod} deleted; {new_leader} leads after {handed_over:.1f} s "
        f"(Lease duration {duration} s)",
    )
    assert handed_over <= duration


def test_the_api_server_calls_the_webhook_through_its_service(e2e: E2E) -> None:
    """A denial only the webhook can give (failurePolicy Fail), and a configuration that
    names the Service, not a URL: the API server reached a webhook pod through kube-proxy."""
    configuration = e2e.cluster.get("validatingwebhookconfiguration", "image-registry-webhook")
    services = {w["clientConfig"].get("service", {}).get("name") for w in configuration["webhooks"]}
    assert services == {"image-registry-webhook"}, configuration["webhooks"]
    namespace = f"limits-{uuid.uuid4().hex[:6]}"
    e2e.kubectl("create", "namespace", namespace)
    limits = objects.stream_limits(**{"alauda.io/image-tags": "1"})
    e2e.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(limits))
    stream = objects.stream("two-tags", ["a", "b"])
    denied = subprocess.run(
        [e2e.env.kubectl_path, f"--kubeconfig={e2e.env.kubeconfig}", "create", "-n", namespace,
         "-f", "-"],
        input=json.dumps(stream), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert denied.returncode != 0
    assert "exceeds the maximum limit" in denied.stderr, denied.stderr
    show("a write the webhook denies, through its Service", denied.stderr.strip())
