"""Restart under load: a webhook replica gets SIGTERM and the controller leader SIGKILL
while ServiceAccounts and ImageStreams are created through the real API server.

Local stack only: it signals the stack's processes and watches its supervisor bring them
back, as the kubelet would.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import time

import pytest

from kube.leaderelection import LeaderElector
from localcluster.processes import ManagedProcess
from localcluster.stack import Stack, leader_status
from localcluster.supervisor import MAX_BACKOFF_SECONDS
from tests.integration.support.cluster import ClusterEnv
from tests.integration.support.controller import holder
from tests.integration.support.load import Load
from tests.integration.support.pullsecrets import every_account_has_its_one_secret

pytestmark = pytest.mark.local_only

LOAD_SECONDS = float(os.environ.get("RESTART_LOAD_SECONDS", "15"))
"""How long the load runs; the signals go out a third of the way in."""
LOAD_PER_SECOND = 10.0
"""ServiceAccounts created per second (each with an ImageStream): a busy cluster's rate,
below what a new leader heals. Each new SA costs the controller four API calls (Secret,
token, Secret, SA), so at --kube-api-qps 50 it heals about 12 a second: a flat-out load
(hundreds a second here) outruns any leader, which is throughput, not a lost Secret."""
HEAL_SECONDS = 30.0
"""The issue's promise: no ServiceAccount is left without its Secret 30 s after."""
LEASE_SECONDS: int = inspect.signature(LeaderElector).parameters["lease_duration"].default
"""A SIGKILLed leader does not release its Lease: a follower takes it once it expires."""
START_DEADLINE = 30.0
"""For a replica to list its caches and campaign (as test_controller_replicas allows)."""


def leaders(stack: Stack) -> list[ManagedProcess]:
    """The controller replicas whose leader gauge says 1."""
    return [p for p in stack.controllers if p.running() and leader_status(p) == 1]


def test_sigterm_to_a_webhook_replica_and_sigkill_to_the_leader_fail_nothing(
    cluster: ClusterEnv, namespace: str
) -> None:
    stack = cluster.stack
    assert stack is not None and len(stack.webhooks) >= 2 and len(stack.controllers) >= 2
    leader: ManagedProcess = cluster.wait(
        stack.controller_leader, timeout=START_DEADLINE, what="a leader"
    )
    leader_name = leader.name
    webhook_name = stack.webhook_names[-1]
    webhook = stack.supervisor.process(webhook_name)
    assert webhook is not None
    before = {n: stack.supervisor.restarts(n) for n in (leader_name, webhook_name)}
    old_holder = holder(cluster)

    load = Load(cluster.api, namespace, per_second=LOAD_PER_SECOND).start()
    try:
        load.keep_running_until(LOAD_SECONDS / 3)
        webhook.popen.send_signal(signal.SIGTERM)  # the kubelet: to the main process
        os.killpg(leader.pid, signal.SIGKILL)  # a node gone: nothing runs its exit path
        load.keep_running_until(LOAD_SECONDS)
    finally:
        load.finish()
    assert load.failures == [], f"{len(load.failures)} of {load.created} requests failed"
    assert load.created >= LOAD_SECONDS, "the load was no load"
    ended = time.monotonic()

    # The supervisor brought both back, as new processes.
    def back(name: str) -> bool:
        process = stack.supervisor.process(name)
        return (
            process is not None and process.running()
            and stack.supervisor.restarts(name) > before[name]
        )  # fmt: skip

    for name in (webhook_name, leader_name):
        cluster.wait(
            functools.partial(back, name), timeout=MAX_BACKOFF_SECONDS, what=f"{name} back"
        )

    # No ServiceAccount left without its Secret, none with two, within 30 s.
    cluster.wait(
        lambda: every_account_has_its_one_secret(cluster, namespace),
        timeout=max(HEAL_SECONDS - (time.monotonic() - ended), 0),
        what="every ServiceAccount's Secret",
    )

    # Exactly one leader afterwards: a live replica holds the Lease, the old holder
    # (killed) does not, and only one replica's gauge says it leads.
    now_leading = cluster.wait(
        lambda: len(found := leaders(stack)) == 1 and found[0],
        timeout=LEASE_SECONDS + START_DEADLINE,
        what="exactly one leader",
    )
    current = holder(cluster)
    assert current and current != old_holder
    assert f"{current} became the leader" in now_leading.log_tail(2000)
    assert len(leaders(stack)) == 1
