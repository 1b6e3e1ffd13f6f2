"""The scale benchmark's pure helpers: sizes, objects, RSS parsing, readiness counting."""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

from bench import scale
from localcluster.processes import ManagedProcess
from localcluster.stack import Stack
from quota.measure import recorded_image_size, stream_usage
from quota.pullsecrets.names import ANNOTATION_TOKEN_EXPIRATION


def test_sizes_scale_down_but_never_to_zero() -> None:
    assert scale.scaled(scale.IMAGESTREAMS, 0.02) == 1_000
    assert scale.scaled(3, 0.01) == 1


def test_objects_carry_the_history_and_sizes_the_rules_read() -> None:
    stream = scale.stream("ns", "app", 0)
    usage = stream_usage(stream)
    assert len(usage.tags) == scale.TAGS_PER_STREAM
    assert len(usage.images) == scale.TAGS_PER_STREAM * scale.HISTORY_PER_TAG
    image = scale.image(3)
    assert recorded_image_size(image) == image["dockerImageMetadata"]["size"]


def test_rss_is_read_from_proc_status() -> None:
    assert scale.rss_mib("Name:\tpython\nVmRSS:\t  204800 kB\nThreads:\t4\n") == 200.0
    assert scale.rss_mib("Name:\tzombie\n") is None


def test_only_tokened_secrets_of_the_round_count() -> None:
    def secret(name: str, tokened: bool) -> dict[str, object]:
        annotations = {ANNOTATION_TOKEN_EXPIRATION: "t"} if tokened else {}
        return {"metadata": {"name": name, "annotations": annotations}}

    page = {
        "items": [
            secret("new-0-00001-dockercfg", True),
            secret("new-0-00002-dockercfg", False),
            secret("new-1-00001-dockercfg", True),
        ]
    }
    assert scale.ready_secret_count(page, "new-0-") == 1


class _Logged:
    """What ``_webhook_synced`` reads of a replica: its one log file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path


def test_a_pod_is_synced_once_every_worker_has_listed_every_informer(tmp_path: Path) -> None:
    log = tmp_path / "webhook.log"
    line = '{"msg":"informer %s: listed 3 objects"}\n'
    log.write_text("".join(line % name for name in ("a", "b")) + line % "a")
    replica = cast(ManagedProcess, _Logged(log))
    # Worker 1 has listed a and b, worker 2 only a: the union of kinds is no sync.
    assert not scale._webhook_synced(replica, informers=2, workers=2)
    log.write_text(log.read_text() + line % "b")
    assert scale._webhook_synced(replica, informers=2, workers=2)
    assert not scale._webhook_synced(replica, informers=3, workers=2)


def test_pss_is_read_from_smaps_rollup() -> None:
    rollup = "00400000-7fff [rollup]\nRss:    204800 kB\nPss:    102400 kB\nPss_Anon: 1 kB\n"
    assert scale.pss_mib(rollup) == 100.0
    assert scale.pss_mib("Rss: 1 kB\n") is None


def test_a_pods_total_is_its_master_and_workers_not_another_pods() -> None:
    memory = {
        "webhook master": 80.0,
        "webhook worker 1": 150.0,
        "webhook worker 2": 150.0,
        "webhook-2 master": 1.0,
        "controller": 100.0,
    }
    assert scale.pod_totals(memory, ["webhook", "webhook-2"]) == {
        "webhook": 380.0,
        "webhook-2": 1.0,
    }


def test_the_sync_deadline_grows_with_the_objects_listed() -> None:
    small, large = scale.sync_timeout(1_000), scale.sync_timeout(156_000)
    assert small < large
    # The full size's deadline leaves room for lists 4x slower than bare ones measured.
    assert large >= 4 * 156_000 * 0.0011


def test_a_process_not_synced_in_time_is_reported_as_never_not_a_lost_run() -> None:
    watch = scale.SyncWatch(cast(Stack, None), webhook_informers=1)
    watch.seconds["webhook"] = 12.0
    assert watch.wait(["webhook", "controller"], timeout=0.3) == {
        "webhook": 12.0,
        "controller": math.inf,
    }
