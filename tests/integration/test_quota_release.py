"""A delete frees its quota at once, as native quota does; a charge no delete explains
still waits out the grace. Against the real API server, with the stack's controller at
its default grace (35 s), so a release that waited it out could not pass."""

from __future__ import annotations

import json
import time

import pytest

from controller.quotausage.reconciler import DEFAULT_QUOTA_RELEASE_GRACE_SECONDS
from localcluster.quotarelease import release_seconds
from tests.integration.support.cluster import RELEASE_DEADLINE, ClusterEnv
from tests.integration.support.objects import quota, stream, used

pytestmark = pytest.mark.local_only  # the grace is the local stack's controller's

RELEASE_AT_ONCE_SECONDS = 2.0
"""The issue's bound for a delete to show in ``status.used`` (native quota: 0.06 s here)."""
R = "alauda.io/imagestreams"


def counted_streams(cluster: ClusterEnv, namespace: str, *names: str) -> None:
    """Streams stored before the quota exists: the quota's first usage is the controller's
    recount, so once it reads len(names) the controller has seen every one of them."""
    for name in names:
        cluster.apply(stream(name), "-n", namespace)
    cluster.apply(quota({R: "5"}), "-n", namespace)
    cluster.wait(
        lambda: used(cluster, namespace) == str(len(names)), timeout=30, what="the recount"
    )


def test_deleting_a_stream_created_long_before_frees_its_quota_within_two_seconds(
    cluster: ClusterEnv, namespace: str
) -> None:
    counted_streams(cluster, namespace, "old")
    seconds = release_seconds(
        cluster.api,
        namespace,
        "images",
        R,
        "0",
        lambda: cluster.kubectl("delete", "imagestream", "old", "-n", namespace),
        timeout=RELEASE_DEADLINE,
    )
    assert seconds < RELEASE_AT_ONCE_SECONDS


def test_a_delete_frees_its_own_charge_and_never_one_still_unexplained(
    cluster: ClusterEnv, namespace: str
) -> None:
    """A create charged but never stored (its twin exists: admission charges, storage
    refuses) is a gap no delete explains; deleting another stream frees that stream's
    charge at once and leaves the gap to the grace."""
    counted_streams(cluster, namespace, "a", "b")
    twin = cluster.kubectl(
        "create", "-n", namespace, "-f", "-", input=json.dumps(stream("a")), check=False
    )
    assert "AlreadyExists" in twin.stderr
    charged = time.monotonic()
    assert used(cluster, namespace) == "3"
    seconds = release_seconds(
        cluster.api,
        namespace,
        "images",
        R,
        "2",
        lambda: cluster.kubectl("delete", "imagestream", "b", "-n", namespace),
        timeout=RELEASE_DEADLINE,
    )
    assert seconds < RELEASE_AT_ONCE_SECONDS
    cluster.wait(
        lambda: used(cluster, namespace) == "1",
        timeout=RELEASE_DEADLINE,
        what="the unexplained charge to be released after the grace",
    )
    assert time.monotonic() - charged >= DEFAULT_QUOTA_RELEASE_GRACE_SECONDS
