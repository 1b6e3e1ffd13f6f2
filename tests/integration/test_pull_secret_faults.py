"""Faults: the webhook down, the reconciler restarted again and again.

Local stack only: these stop and start our processes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from localcluster.stack import Stack
from tests.integration.support.cluster import ClusterEnv
from tests.integration.support.pullsecrets import (
    managed_secrets,
    pull_secret_names,
    valid_secret,
    wait_secret,
)

pytestmark = pytest.mark.local_only


@pytest.fixture
def stack(cluster: ClusterEnv) -> Iterator[Stack]:
    assert cluster.stack is not None
    yield cluster.stack
    # Whatever a test stopped comes back for the next one.
    if cluster.stack.webhook is None:
        cluster.stack.start_webhook()
    if cluster.stack.controller is None:
        cluster.stack.start_controller()


def test_a_serviceaccount_created_while_the_webhook_is_down_is_healed(
    cluster: ClusterEnv, stack: Stack, namespace: str
) -> None:
    stack.stop_webhook()
    # failurePolicy Ignore: the SA is created, unpatched (the create response shows the
    # object as admitted, before the reconciler can have touched it).
    created = cluster.kubectl_json("create", "serviceaccount", "orphan", "-n", namespace)
    assert "imagePullSecrets" not in created
    wait_secret(cluster, namespace, "orphan", timeout=30)
    cluster.wait(
        lambda: pull_secret_names(cluster, namespace, "orphan") == ["orphan-dockercfg"],
        timeout=30,
        what="the reconciler to patch the SA",
    )


def test_ten_reconciler_restarts_over_200_serviceaccounts_leave_exactly_200_secrets(
    cluster: ClusterEnv, stack: Stack, namespace: str
) -> None:
    # default and builder are made for every namespace (Kubernetes, our controller).
    names = ["default", "builder"] + [f"sa-{i:03d}" for i in range(198)]
    items = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": n}} for n in names[2:]
    ]
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )
    for _ in range(10):
        stack.stop_controller()
        stack.start_controller()
        seen = len(managed_secrets(cluster, namespace))
        if seen < len(names):
            # Let each incarnation make progress before the next restart.

            def progressed(seen: int = seen) -> bool:
                return len(managed_secrets(cluster, namespace)) > seen

            cluster.wait(
                progressed,
                timeout=60,
                what="progress after a restart",
            )
    cluster.wait(
        lambda: all(valid_secret(cluster, namespace, n) for n in names),
        timeout=120,
        what="every SA to have a valid secret",
    )
    secrets = managed_secrets(cluster, namespace)
    assert sorted(s["metadata"]["name"] for s in secrets) == sorted(f"{n}-dockercfg" for n in names)
    all_secrets = cluster.kubectl_json("get", "secrets", "-n", namespace)["items"]
    assert len(all_secrets) == len(names)
    sas = cluster.kubectl_json("get", "serviceaccounts", "-n", namespace)["items"]
    for sa in sas:
        entries = [e["name"] for e in sa.get("imagePullSecrets") or []]
        assert entries == [f"{sa['metadata']['name']}-dockercfg"]
