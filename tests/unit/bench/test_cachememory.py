"""The cache memory benchmark's pure parts: when a pod's workers have all synced, and the
pull Secrets it fills the cluster with."""

from __future__ import annotations

import os

from bench.cachememory import all_listed, memory_mib, pull_secret
from quota.pullsecrets.names import MANAGED_SECRET_SELECTOR, SECRET_TYPE_DOCKERCONFIGJSON


def test_a_pod_is_synced_once_each_informer_listed_in_every_worker() -> None:
    log = "informer images: listed 5 objects\ninformer imagestreams: listed 2 objects\n"
    assert not all_listed(log, informers=2, workers=2)
    assert all_listed(log * 2, informers=2, workers=2)
    assert not all_listed(log * 2, informers=3, workers=2)


def test_memory_is_read_for_this_process() -> None:
    memory = memory_mib(os.getpid())
    assert 0 < memory["pss"] <= memory["rss"]


def test_the_filled_pull_secrets_are_managed_ones() -> None:
    secret = pull_secret("team-a", "builder")
    label, value = MANAGED_SECRET_SELECTOR.split("=")
    assert secret["metadata"]["labels"] == {label: value}
    assert secret["type"] == SECRET_TYPE_DOCKERCONFIGJSON
