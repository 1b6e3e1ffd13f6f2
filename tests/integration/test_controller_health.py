"""The controller's plain-HTTP /healthz and /readyz, and its leader gauge, on two replicas.

Local stack only: it reads the processes' loopback ports and starts a second replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from localcluster.processes import ManagedProcess
from tests.integration.support.cluster import ClusterEnv
from tests.integration.support.controller import START_DEADLINE

pytestmark = pytest.mark.local_only

LEADER = ("registry_v2_policy_leader_election_status", {"lease": "image-registry-controller"})


def probe(process: ManagedProcess, path: str) -> tuple[int, Any]:
    response = requests.get(f"http://127.0.0.1:{process.ports['health']}{path}", timeout=5)
    return response.status_code, response.json()


def leader_status(process: ManagedProcess) -> float | None:
    page = requests.get(f"http://127.0.0.1:{process.ports['metrics']}/metrics", timeout=5).text
    name, labels = LEADER
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@pytest.fixture
def follower(cluster: ClusterEnv) -> Iterator[ManagedProcess]:
    stack = cluster.stack
    assert stack is not None
    cluster.wait(stack.controller_leader, timeout=START_DEADLINE, what="a leader")
    replica = stack.spawn_controller("controller-health")
    yield replica
    replica.stop()


def test_the_leader_is_ready_and_healthy(cluster: ClusterEnv) -> None:
    assert cluster.stack is not None and cluster.stack.controller is not None
    leader = cluster.stack.controller
    cluster.wait(
        lambda: probe(leader, "/readyz")[0] == 200,
        timeout=START_DEADLINE,
        what="the controller's caches to sync",
    )
    assert probe(leader, "/readyz") == (200, {"status": "ok"})
    assert probe(leader, "/healthz") == (200, {"status": "ok"})
    assert probe(leader, "/nothing")[0] == 404


def test_a_follower_is_ready_healthy_and_not_the_leader(
    cluster: ClusterEnv, follower: ManagedProcess
) -> None:
    def answering() -> bool:
        try:
            return probe(follower, "/readyz")[0] == 200
        except requests.ConnectionError:
            assert follower.running(), follower.log_tail()
            return False

    cluster.wait(answering, timeout=START_DEADLINE, what="the follower's caches to sync")
    assert probe(follower, "/healthz") == (200, {"status": "ok"})
    assert leader_status(follower) == 0
    assert cluster.stack is not None and cluster.stack.controller is not None
    assert leader_status(cluster.stack.controller) == 1
