"""Two controller replicas: one leads and writes, the other takes over when it goes.

Local stack only: it starts and stops controller processes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcluster.processes import ManagedProcess
from localcluster.stack import Stack
from tests.integration.support.cluster import ClusterEnv
from tests.integration.support.controller import START_DEADLINE, holder
from tests.integration.support.pullsecrets import wait_secret

pytestmark = pytest.mark.local_only


@pytest.fixture
def second(cluster: ClusterEnv) -> Iterator[tuple[Stack, ManagedProcess]]:
    stack = cluster.stack
    assert stack is not None and stack.controller is not None
    # One of the stack's own replicas leads (by its leader gauge, not its log) before the
    # spare starts.
    cluster.wait(
        lambda: bool(holder(cluster)) and stack.controller_leader() is not None,
        timeout=START_DEADLINE,
        what="a stack replica to lead",
    )
    replica = stack.spawn_controller("controller-spare")
    yield stack, replica
    replica.stop()
    if stack.controller is None:
        stack.start_controller()


def test_only_the_leader_writes_and_a_follower_takes_over(
    cluster: ClusterEnv, namespace: str, second: tuple[Stack, ManagedProcess]
) -> None:
    stack, replica = second
    first_leader = holder(cluster)
    cluster.wait(
        lambda: "informer serviceaccounts: listed" in replica.log_tail(200),
        timeout=30,
        what="the second replica's caches",
    )
    cluster.kubectl("create", "serviceaccount", "one", "-n", namespace)
    wait_secret(cluster, namespace, "one")
    assert holder(cluster) == first_leader
    assert "became the leader" not in replica.log_tail(500)
    assert "pull secret" not in replica.log_tail(500)

    stack.stop_controller()  # the leader releases the Lease on its way out (both go)
    cluster.wait(
        lambda: holder(cluster) not in ("", first_leader),
        timeout=30,
        what="the second replica to take the Lease",
    )
    cluster.kubectl("create", "serviceaccount", "two", "-n", namespace)
    wait_secret(cluster, namespace, "two")
    assert f"pull secret {namespace}/two-dockercfg created" in replica.log_tail(500)
